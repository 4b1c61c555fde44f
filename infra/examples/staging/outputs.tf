output "url" {
  description = "Public URL of the runtime (point a DNS alias at alb_dns_name for the certificate's name)."
  value       = "https://${module.agent_runtime.alb_dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = module.agent_runtime.alb_dns_name
}

output "dropzero_target" {
  description = "Paste into a scenario's [target] block to run it against this environment."
  value       = module.agent_runtime.dropzero_target
}

output "dropzero_local_target" {
  description = "Paste into a scenario's [target] block to rehearse this environment locally."
  value       = module.agent_runtime.dropzero_local_target
}

output "dropzero_autoscaling" {
  description = "Paste into a scenario's [autoscaling] block."
  value       = module.agent_runtime.dropzero_autoscaling
}

output "log_group_name" {
  description = "Where the tasks' logs go (CloudWatch Logs Insights: filter by session_id)."
  value       = module.agent_runtime.log_group_name
}
