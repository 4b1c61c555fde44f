# One environment of the agent runtime. staging/ and prod/ are the same root module; only
# terraform.tfvars differs (infra_check.sh checks that the .tf files are identical).

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

module "agent_runtime" {
  source = "../../modules/agent-runtime"

  name = var.name
  network = {
    vpc_id             = var.vpc_id
    service_subnet_ids = var.private_subnet_ids
    alb_subnet_ids     = var.public_subnet_ids
  }
  container = {
    image  = var.image
    cpu    = var.task_cpu
    memory = var.task_memory
  }
  alb = {
    certificate_arn     = var.certificate_arn
    deletion_protection = var.deletion_protection
  }
  drain_strategy          = var.drain_strategy
  longest_session_seconds = var.longest_session_seconds
  journal = var.create_journal ? {
    elasticache = {
      subnet_ids         = var.private_subnet_ids
      node_type          = var.journal_node_type
      num_cache_clusters = var.journal_nodes
    }
  } : {}
  autoscaling = {
    min_capacity = var.min_tasks
    max_capacity = var.max_tasks
    target_value = var.sessions_per_task
  }
  logs = {
    retention_in_days = var.log_retention_in_days
  }
}
