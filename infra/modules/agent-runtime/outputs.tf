output "cluster_name" {
  description = "Name of the ECS cluster the service runs in."
  value       = local.cluster_name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = local.create_cluster ? aws_ecs_cluster.this[0].arn : local.cluster_arn
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the task definition this apply registered."
  value       = aws_ecs_task_definition.this.arn
}

output "alb_arn" {
  description = "ARN of the ALB (attach a WAF web ACL here)."
  value       = aws_lb.this.arn
}

output "alb_dns_name" {
  description = "DNS name of the ALB; point your DNS record (alias) at it."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone id of the ALB, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "target_group_arn" {
  description = "ARN of the target group the tasks register in."
  value       = aws_lb_target_group.this.arn
}

output "deregistration_delay_seconds" {
  description = "The target group's deregistration delay, as chosen by drain_strategy."
  value       = local.deregistration_delay
}

output "execution_role_arn" {
  description = "ARN of the task execution role (image pull, secrets, logs)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the task role (scale-in protection of its own tasks)."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of the tasks (JSON logs with session_id; EMF metric lines)."
  value       = aws_cloudwatch_log_group.this.name
}

output "service_security_group_id" {
  description = "Security group of the tasks (allow it where the runtime must connect)."
  value       = aws_security_group.service.id
}

output "journal_url_secret_arn" {
  description = "ARN of the secret holding the journal's rediss:// URL (null without a journal)."
  value       = local.has_journal ? local.journal_secret_arn : null
}

output "journal_endpoint" {
  description = "Primary endpoint of the created ElastiCache journal (null when none was created)."
  value       = local.create_redis ? aws_elasticache_replication_group.journal[0].primary_endpoint_address : null
}

output "dropzero_target" {
  description = "A dropzero scenario's [target] block (kind = \"ecs\") that drives this service: cluster, service, region and the public URL (add endpoint_url to point at the ECS emulator instead of AWS)."
  value = {
    kind    = "ecs"
    cluster = local.cluster_name
    service = aws_ecs_service.this.name
    region  = local.region
    url     = "https://${aws_lb.this.dns_name}"
  }
}

output "dropzero_local_target" {
  description = "A [target] block (kind = \"local\") with this service's drain, deploy and ALB settings, to rehearse a deploy of exactly this configuration on one machine before running it against AWS."
  value = {
    kind                 = "local"
    replicas             = var.autoscaling.min_capacity
    mode                 = var.runtime.mode
    journal              = local.has_journal ? "redis" : "memory"
    stop_timeout         = "${var.runtime.stop_timeout_seconds}s"
    drain_timeout        = "${var.runtime.drain_timeout_seconds}s"
    keepalive            = "${var.runtime.keepalive_seconds}s"
    deregistration_delay = "${local.deregistration_delay}s"
    deployment = {
      minimum_healthy_percent = var.deployment.minimum_healthy_percent
      maximum_percent         = var.deployment.maximum_percent
    }
    router = {
      algorithm             = "least_outstanding"
      health_check_interval = "${var.alb.health_check.interval}s"
      healthy_threshold     = var.alb.health_check.healthy_threshold
      unhealthy_threshold   = var.alb.health_check.unhealthy_threshold
      idle_timeout          = "${var.alb.idle_timeout}s"
    }
  }
}

output "dropzero_autoscaling" {
  description = "A scenario's [autoscaling] block matching this service's target tracking policy (metric = active_sessions)."
  value = {
    metric             = "active_sessions"
    target_value       = var.autoscaling.target_value
    min                = var.autoscaling.min_capacity
    max                = var.autoscaling.max_capacity
    scale_out_cooldown = "${var.autoscaling.scale_out_cooldown}s"
    scale_in_cooldown  = "${var.autoscaling.scale_in_cooldown}s"
  }
}
