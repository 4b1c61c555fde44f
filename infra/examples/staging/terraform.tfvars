# staging: one journal node, small tasks, no deletion protection, short log retention.
region = "eu-west-1"
tags = {
  environment = "staging"
  service     = "finn-runtime"
}
name                    = "finn-runtime-staging"
vpc_id                  = "vpc-0a1b2c3d4e5f60718"
private_subnet_ids      = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
public_subnet_ids       = ["subnet-0a1b2c3d4e5f60101", "subnet-0a1b2c3d4e5f60102"]
image                   = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/finn-runtime:staging"
task_cpu                = 512
task_memory             = 1024
certificate_arn         = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000001"
deletion_protection     = false
drain_strategy          = "handoff"
longest_session_seconds = 600
create_journal          = true
journal_node_type       = "cache.t4g.micro"
journal_nodes           = 1
min_tasks               = 1
max_tasks               = 4
sessions_per_task       = 10
log_retention_in_days   = 30
