variable "region" {
  description = "AWS region of this environment."
  type        = string
}

variable "tags" {
  description = "Default tags of every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Service name (see the module's `name`)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the service."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks and the journal (with a NAT gateway or VPC endpoints)."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing ALB, in two or more AZs."
  type        = list(string)
}

variable "image" {
  description = "Runtime image, e.g. ACCOUNT.dkr.ecr.REGION.amazonaws.com/finn-runtime:TAG."
  type        = string
}

variable "task_cpu" {
  description = "Fargate CPU units per task."
  type        = number
}

variable "task_memory" {
  description = "Fargate memory (MiB) per task."
  type        = number
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "deletion_protection" {
  description = "ALB deletion protection."
  type        = bool
}

variable "drain_strategy" {
  description = "\"drain\" or \"handoff\" (see the module)."
  type        = string
}

variable "longest_session_seconds" {
  description = "The longest session expected."
  type        = number
}

variable "create_journal" {
  description = "Create an ElastiCache Redis journal (needed for handoff)."
  type        = bool
}

variable "journal_node_type" {
  description = "ElastiCache node type of the journal."
  type        = string
}

variable "journal_nodes" {
  description = "Journal nodes: 1 = no replica, 2+ = a primary with replicas and automatic failover."
  type        = number
}

variable "min_tasks" {
  description = "Autoscaling minimum (and initial) task count."
  type        = number
}

variable "max_tasks" {
  description = "Autoscaling maximum task count."
  type        = number
}

variable "sessions_per_task" {
  description = "Target tracking target: active sessions per task (from `dropzero capacity`)."
  type        = number
}

variable "log_retention_in_days" {
  description = "Log retention of the tasks' log group."
  type        = number
}
