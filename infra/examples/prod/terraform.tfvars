# prod: a journal with a replica and automatic failover, larger tasks, deletion protection,
# a year of logs. sessions_per_task is what `dropzero capacity` recommended for this task size.
region = "eu-west-1"
tags = {
  environment = "prod"
  service     = "finn-runtime"
}
name                    = "finn-runtime-prod"
vpc_id                  = "vpc-0f1e2d3c4b5a60718"
private_subnet_ids      = ["subnet-0f1e2d3c4b5a60001", "subnet-0f1e2d3c4b5a60002", "subnet-0f1e2d3c4b5a60003"]
public_subnet_ids       = ["subnet-0f1e2d3c4b5a60101", "subnet-0f1e2d3c4b5a60102", "subnet-0f1e2d3c4b5a60103"]
image                   = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/finn-runtime:1.4.2"
task_cpu                = 2048
task_memory             = 4096
certificate_arn         = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000002"
deletion_protection     = true
drain_strategy          = "handoff"
longest_session_seconds = 600
create_journal          = true
journal_node_type       = "cache.r7g.large"
journal_nodes           = 2
min_tasks               = 3
max_tasks               = 30
sessions_per_task       = 40
log_retention_in_days   = 365
