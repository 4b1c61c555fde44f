# Inputs of the agent-runtime module. Every object has `optional()` defaults tuned for
# 30 s – 10 min SSE sessions; every validation says what is allowed. Ranges are AWS's own
# (ECS task definition, ALB, target group, Application Auto Scaling, CloudWatch Logs).

variable "name" {
  description = "Name of the service; also names the ALB, target group, cluster (when created), roles, log group and journal. Lowercase letters, digits and hyphens, 1-28 characters, starting with a letter (the ALB and target group allow 32)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,27}$", var.name)) && !endswith(var.name, "-")
    error_message = "name must be 1-28 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "network" {
  description = <<-EOT
    Where things run. `vpc_id`; `service_subnet_ids`: private subnets for the tasks (they
    need a route to ECR, Secrets Manager, CloudWatch Logs and the LLM API: a NAT gateway or
    VPC endpoints); `alb_subnet_ids`: at least two subnets in different AZs (public ones for
    an internet-facing ALB); `assign_public_ip` only for tasks in public subnets without NAT;
    `egress_cidr_blocks`: where tasks may open HTTPS (443) connections.
  EOT
  type = object({
    vpc_id             = string
    service_subnet_ids = list(string)
    alb_subnet_ids     = list(string)
    assign_public_ip   = optional(bool, false)
    egress_cidr_blocks = optional(list(string), ["0.0.0.0/0"])
  })
  nullable = false

  validation {
    condition     = length(var.network.service_subnet_ids) >= 1 && length(var.network.alb_subnet_ids) >= 2
    error_message = "network.service_subnet_ids needs at least one subnet and network.alb_subnet_ids at least two (an ALB spans two or more AZs)."
  }
}

variable "cluster" {
  description = "The ECS cluster. `existing_name` = null creates a cluster named after `name` with Container Insights (`container_insights`: enabled | enhanced | disabled); otherwise the service joins that cluster as it is."
  type = object({
    existing_name      = optional(string)
    container_insights = optional(string, "enabled")
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.cluster.container_insights)
    error_message = "cluster.container_insights must be \"enabled\", \"enhanced\" or \"disabled\"."
  }
}

variable "container" {
  description = <<-EOT
    The runtime container. `image`: e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/finn-runtime:1.4.2`
    (an ECR image gets pull permissions scoped to its repository). `cpu`/`memory`: Fargate
    task size (CPU units / MiB). `port`: where the runtime listens. `command`: null runs the
    dropzero reference runtime with flags built from `runtime`; give a list to run any other
    runtime that speaks session protocol v1 (then `runtime` only feeds the ALB and stop
    settings). `nofile`: open-file limit (every SSE stream is a socket). `health_check`: the
    container health check (default: curl /healthz inside the container).
  EOT
  type = object({
    image            = string
    cpu              = optional(number, 1024)
    memory           = optional(number, 2048)
    port             = optional(number, 8080)
    cpu_architecture = optional(string, "X86_64")
    command          = optional(list(string))
    environment      = optional(map(string), {})
    nofile           = optional(number, 65536)
    health_check = optional(object({
      command      = optional(list(string))
      interval     = optional(number, 15)
      timeout      = optional(number, 5)
      retries      = optional(number, 3)
      start_period = optional(number, 15)
    }), {})
  })
  nullable = false

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.container.cpu)
    error_message = "container.cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
  validation {
    condition     = var.container.memory >= 512 && var.container.memory <= 122880 && var.container.memory >= var.container.cpu && var.container.memory <= var.container.cpu * 8
    error_message = "container.memory must be 512-122880 MiB and between 1x and 8x container.cpu (Fargate's CPU/memory combinations)."
  }
  validation {
    condition     = var.container.port >= 1 && var.container.port <= 65535 && floor(var.container.port) == var.container.port
    error_message = "container.port must be an integer from 1 to 65535."
  }
  validation {
    condition     = contains(["X86_64", "ARM64"], var.container.cpu_architecture)
    error_message = "container.cpu_architecture must be \"X86_64\" or \"ARM64\"."
  }
  validation {
    condition     = var.container.nofile >= 1024 && var.container.nofile <= 1048576
    error_message = "container.nofile must be 1024-1048576 (Fargate's hard limit for nofile)."
  }
  validation {
    condition = (
      var.container.health_check.interval >= 5 && var.container.health_check.interval <= 300 &&
      var.container.health_check.timeout >= 2 && var.container.health_check.timeout <= 120 &&
      var.container.health_check.retries >= 1 && var.container.health_check.retries <= 10 &&
      var.container.health_check.start_period >= 0 && var.container.health_check.start_period <= 300
    )
    error_message = "container.health_check: interval 5-300 s, timeout 2-120 s, retries 1-10, start_period 0-300 s (ECS's ranges)."
  }
}

variable "runtime" {
  description = <<-EOT
    How the runtime drains and streams. `stop_timeout_seconds`: ECS's SIGTERM → SIGKILL
    window (Fargate's max, 120, by default). `drain_timeout_seconds`: how long in-flight
    sessions keep streaming after SIGTERM before they are handed off; must end before the
    stop timeout. `keepalive_seconds`: longest silence on a stream before a `: keepalive`
    comment; must be below the ALB idle timeout. `mode`: resilient | naive (naive exists to
    demonstrate drops). `llm_url`: the LLM API base URL. `extra_args`: appended to the
    reference runtime's command line.
  EOT
  type = object({
    mode                  = optional(string, "resilient")
    stop_timeout_seconds  = optional(number, 120)
    drain_timeout_seconds = optional(number, 100)
    keepalive_seconds     = optional(number, 15)
    llm_url               = optional(string, "https://api.anthropic.com")
    extra_args            = optional(list(string), [])
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["resilient", "naive"], var.runtime.mode)
    error_message = "runtime.mode must be \"resilient\" or \"naive\"."
  }
  validation {
    condition     = var.runtime.stop_timeout_seconds >= 2 && var.runtime.stop_timeout_seconds <= 120
    error_message = "runtime.stop_timeout_seconds must be 2-120 (Fargate's range for stopTimeout)."
  }
  validation {
    condition     = var.runtime.drain_timeout_seconds >= 1 && var.runtime.drain_timeout_seconds < var.runtime.stop_timeout_seconds
    error_message = "runtime.drain_timeout_seconds must be at least 1 and below runtime.stop_timeout_seconds, or SIGKILL cuts the hand-off."
  }
  validation {
    condition     = var.runtime.keepalive_seconds >= 1 && var.runtime.keepalive_seconds <= 3600
    error_message = "runtime.keepalive_seconds must be 1-3600."
  }
}

variable "llm_api_key" {
  description = "The one secret the execution role may read: the LLM API key, looked up by `secret_name` and injected as environment variable `env_name` (through `secrets`/`valueFrom`, never in plain text). `kms_key_arn`: the customer managed key that encrypts it, if any (adds kms:Decrypt on that key only)."
  type = object({
    secret_name = optional(string, "mithrl/finn/anthropic-api-key")
    env_name    = optional(string, "ANTHROPIC_API_KEY")
    kms_key_arn = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.llm_api_key.secret_name)) && can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.llm_api_key.env_name))
    error_message = "llm_api_key.secret_name must be a Secrets Manager name (letters, digits, /_+=.@-) and env_name an environment variable name."
  }
  validation {
    condition     = var.llm_api_key.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.llm_api_key.kms_key_arn))
    error_message = "llm_api_key.kms_key_arn must be a KMS key ARN (arn:aws:kms:...) or null."
  }
}

variable "drain_strategy" {
  description = <<-EOT
    How a deploy avoids dropping sessions (DESIGN §6). "drain": the target group's
    deregistration delay is at least `longest_session_seconds`, so every stream finishes on
    its old task (slow deploys, nothing handed off, no shared journal needed). "handoff": a
    short deregistration delay; streams are cut when deregistration completes, clients
    resume on another task from the shared journal, and the old task hands its sessions off
    at its drain deadline (fast deploys; needs `journal`).
  EOT
  type        = string
  default     = "drain"
  nullable    = false

  validation {
    condition     = contains(["drain", "handoff"], var.drain_strategy)
    error_message = "drain_strategy must be \"drain\" or \"handoff\"."
  }
  validation {
    condition     = var.drain_strategy != "handoff" || var.journal.existing != null || var.journal.elasticache != null
    error_message = "drain_strategy = \"handoff\" needs a shared journal: set journal.existing (a secret holding a rediss:// URL) or journal.elasticache."
  }
  validation {
    condition     = var.drain_strategy != "handoff" || var.runtime.mode == "resilient"
    error_message = "drain_strategy = \"handoff\" needs runtime.mode = \"resilient\" (the naive runtime cannot hand sessions off)."
  }
}

variable "longest_session_seconds" {
  description = "The longest session you expect (seconds). With drain_strategy = \"drain\" the deregistration delay defaults to it."
  type        = number
  default     = 600
  nullable    = false

  validation {
    condition     = var.longest_session_seconds >= 1 && var.longest_session_seconds <= 3600
    error_message = "longest_session_seconds must be 1-3600 (the deregistration delay's maximum)."
  }
}

variable "deregistration_delay_seconds" {
  description = "Target group deregistration delay. null = by strategy: `longest_session_seconds` for \"drain\", 30 for \"handoff\". With \"drain\" it must be at least `longest_session_seconds`."
  type        = number
  default     = null

  validation {
    condition     = var.deregistration_delay_seconds == null || (coalesce(var.deregistration_delay_seconds, 0) >= 0 && coalesce(var.deregistration_delay_seconds, 0) <= 3600)
    error_message = "deregistration_delay_seconds must be 0-3600 (the target group's range) or null."
  }
  validation {
    condition     = var.deregistration_delay_seconds == null || var.drain_strategy != "drain" || coalesce(var.deregistration_delay_seconds, 0) >= var.longest_session_seconds
    error_message = "With drain_strategy = \"drain\", deregistration_delay_seconds must be at least longest_session_seconds, or a deploy cuts the longest sessions."
  }
}

variable "alb" {
  description = <<-EOT
    The load balancer. `certificate_arn`: ACM certificate of the HTTPS listener. `ssl_policy`:
    a TLS 1.3 policy (TLS13-1-2: TLS 1.2 and 1.3; TLS13-1-3: 1.3 only). `idle_timeout`: seconds
    of silence before the ALB closes a connection; must exceed runtime.keepalive_seconds.
    `deletion_protection`: on by default. `ingress_cidr_blocks`: who may connect (80 only
    redirects). `access_logs_bucket`: S3 bucket for access logs (null = off). `health_check`:
    the target group's check on the runtime's readiness endpoint.
  EOT
  type = object({
    certificate_arn     = string
    internal            = optional(bool, false)
    ssl_policy          = optional(string, "ELBSecurityPolicy-TLS13-1-2-2021-06")
    idle_timeout        = optional(number, 120)
    deletion_protection = optional(bool, true)
    ingress_cidr_blocks = optional(list(string), ["0.0.0.0/0"])
    access_logs_bucket  = optional(string)
    access_logs_prefix  = optional(string)
    health_check = optional(object({
      path                = optional(string, "/readyz")
      interval            = optional(number, 10)
      timeout             = optional(number, 5)
      healthy_threshold   = optional(number, 2)
      unhealthy_threshold = optional(number, 2)
    }), {})
  })
  nullable = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.alb.certificate_arn))
    error_message = "alb.certificate_arn must be an ACM certificate ARN (arn:aws:acm:...)."
  }
  validation {
    condition     = can(regex("^ELBSecurityPolicy-TLS13-1-[23]-", var.alb.ssl_policy))
    error_message = "alb.ssl_policy must be a TLS 1.3 policy with TLS 1.2 as the minimum or TLS 1.3 only (ELBSecurityPolicy-TLS13-1-2-... or ELBSecurityPolicy-TLS13-1-3-...)."
  }
  validation {
    condition     = var.alb.idle_timeout >= 1 && var.alb.idle_timeout <= 4000
    error_message = "alb.idle_timeout must be 1-4000 seconds (the ALB's range)."
  }
  validation {
    condition     = var.alb.idle_timeout > var.runtime.keepalive_seconds
    error_message = "alb.idle_timeout must be greater than runtime.keepalive_seconds, or the ALB closes quiet streams between keepalives."
  }
  validation {
    condition = (
      var.alb.health_check.interval >= 5 && var.alb.health_check.interval <= 300 &&
      var.alb.health_check.timeout >= 2 && var.alb.health_check.timeout <= 120 &&
      var.alb.health_check.timeout < var.alb.health_check.interval &&
      var.alb.health_check.healthy_threshold >= 2 && var.alb.health_check.healthy_threshold <= 10 &&
      var.alb.health_check.unhealthy_threshold >= 2 && var.alb.health_check.unhealthy_threshold <= 10 &&
      startswith(var.alb.health_check.path, "/")
    )
    error_message = "alb.health_check: interval 5-300 s, timeout 2-120 s and below the interval, thresholds 2-10, path starting with /."
  }
}

variable "deployment" {
  description = "Rolling deployment: `minimum_healthy_percent` (0-100) and `maximum_percent` (100-200) of the desired count, and how long the ALB health check is ignored after a task starts. The circuit breaker with rollback is always on."
  type = object({
    minimum_healthy_percent           = optional(number, 100)
    maximum_percent                   = optional(number, 200)
    health_check_grace_period_seconds = optional(number, 30)
  })
  default  = {}
  nullable = false

  validation {
    condition = (
      var.deployment.minimum_healthy_percent >= 0 && var.deployment.minimum_healthy_percent <= 100 &&
      var.deployment.maximum_percent >= 100 && var.deployment.maximum_percent <= 200 &&
      var.deployment.maximum_percent > var.deployment.minimum_healthy_percent
    )
    error_message = "deployment: minimum_healthy_percent 0-100, maximum_percent 100-200 and above the minimum (or a rolling deploy cannot start a task)."
  }
  validation {
    condition     = var.deployment.health_check_grace_period_seconds >= 0 && var.deployment.health_check_grace_period_seconds <= 2147483647
    error_message = "deployment.health_check_grace_period_seconds must be 0-2147483647."
  }
}

variable "autoscaling" {
  description = <<-EOT
    Target tracking on active sessions per task (not CPU). `target_value`: sessions per
    task to hold; use `dropzero capacity`'s recommended target_value. `min_capacity` is also
    the initial desired count (after creation autoscaling owns it). Cooldowns in seconds.
    The runtime publishes `metric_name` in `metric_namespace` as CloudWatch Embedded Metric
    Format log lines, dimensioned by ClusterName and ServiceName.
  EOT
  type = object({
    min_capacity       = optional(number, 2)
    max_capacity       = optional(number, 10)
    target_value       = optional(number, 20)
    scale_out_cooldown = optional(number, 60)
    scale_in_cooldown  = optional(number, 300)
    metric_namespace   = optional(string, "dropzero")
    metric_name        = optional(string, "ActiveSessions")
    emf_interval       = optional(number, 10)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.autoscaling.min_capacity >= 1 && var.autoscaling.max_capacity >= var.autoscaling.min_capacity && var.autoscaling.max_capacity <= 5000
    error_message = "autoscaling: min_capacity at least 1, max_capacity at least min_capacity and at most 5000 (ECS's tasks per service)."
  }
  validation {
    condition     = var.autoscaling.target_value > 0
    error_message = "autoscaling.target_value must be positive (active sessions per task)."
  }
  validation {
    condition     = var.autoscaling.scale_out_cooldown >= 0 && var.autoscaling.scale_in_cooldown >= 0 && var.autoscaling.scale_out_cooldown <= 86400 && var.autoscaling.scale_in_cooldown <= 86400
    error_message = "autoscaling cooldowns must be 0-86400 seconds."
  }
  validation {
    condition     = can(regex("^[^:][^:]{0,254}$", var.autoscaling.metric_namespace)) && !startswith(var.autoscaling.metric_namespace, "AWS/") && length(var.autoscaling.metric_name) >= 1 && length(var.autoscaling.metric_name) <= 255
    error_message = "autoscaling.metric_namespace must be 1-255 characters, without ':' and not under AWS/; metric_name 1-255 characters."
  }
  validation {
    condition     = var.autoscaling.emf_interval >= 1 && var.autoscaling.emf_interval <= 60
    error_message = "autoscaling.emf_interval must be 1-60 seconds (target tracking reads one-minute datapoints)."
  }
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into running tasks (adds the SSM channel permissions to the task role). Off by default."
  type        = bool
  default     = false
  nullable    = false
}

variable "logs" {
  description = "The log group every task writes to (`/ecs/<name>`): retention in days (a CloudWatch Logs retention value) and an optional customer managed KMS key ARN."
  type = object({
    retention_in_days = optional(number, 365)
    kms_key_arn       = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.logs.retention_in_days)
    error_message = "logs.retention_in_days must be one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "journal" {
  description = <<-EOT
    The shared session journal (Redis) that lets any task serve and take over any session;
    required for drain_strategy = "handoff". At most one of: `existing`: a Secrets Manager
    secret holding the full `rediss://:TOKEN@HOST:PORT/DB?prefix=NAME` URL (`port` and
    `cidr_blocks` open the tasks' egress to it; `kms_key_arn` if a customer key encrypts the
    secret); `elasticache`: a Redis replication group this module creates (TLS in transit,
    encryption at rest, an auth token generated into Secrets Manager, a security group open
    only to the service). `key_prefix`: the runtime's key prefix in a created journal.
  EOT
  type = object({
    key_prefix = optional(string, "dropzero")
    existing = optional(object({
      url_secret_arn = string
      kms_key_arn    = optional(string)
      port           = optional(number, 6379)
      cidr_blocks    = list(string)
    }))
    elasticache = optional(object({
      subnet_ids               = list(string)
      node_type                = optional(string, "cache.t4g.small")
      engine_version           = optional(string, "7.1")
      num_cache_clusters       = optional(number, 2)
      snapshot_retention_limit = optional(number, 1)
      kms_key_arn              = optional(string)
    }))
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.journal.existing == null || var.journal.elasticache == null
    error_message = "journal: set at most one of existing and elasticache."
  }
  validation {
    condition     = var.journal.existing == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", try(var.journal.existing.url_secret_arn, "")))
    error_message = "journal.existing.url_secret_arn must be a Secrets Manager secret ARN."
  }
  validation {
    condition     = var.journal.elasticache == null || (try(var.journal.elasticache.num_cache_clusters, 0) >= 1 && try(var.journal.elasticache.num_cache_clusters, 0) <= 6 && try(length(var.journal.elasticache.subnet_ids), 0) >= 1)
    error_message = "journal.elasticache: num_cache_clusters 1-6 (a primary and up to 5 replicas) and at least one subnet."
  }
  validation {
    condition     = can(regex("^[A-Za-z0-9._:-]+$", var.journal.key_prefix))
    error_message = "journal.key_prefix must be non-empty ASCII letters, digits or ._:- (what the runtime accepts)."
  }
}
