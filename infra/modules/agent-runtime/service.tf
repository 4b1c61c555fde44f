# The ECS side: cluster (optional), log group, task definition, service and the tasks'
# security group. Tuned for long SSE sessions: SIGTERM starts the runtime's drain and the
# stop timeout gives it up to 120 s before SIGKILL; autoscaling owns the desired count.

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_65:Container Insights is var.cluster.container_insights, "enabled" by default; checkov does not resolve optional() defaults through a module call.
  count = local.create_cluster ? 1 : 0

  name = local.cluster_name

  setting {
    name  = "containerInsights"
    value = var.cluster.container_insights
  }

  tags = local.tags
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is logs.retention_in_days, 365 by default; the staging example keeps 30 days on purpose.
  name              = local.log_group_name
  retention_in_days = var.logs.retention_in_days
  kms_key_id        = var.logs.kms_key_arn

  tags = local.tags
}

locals {
  # The reference runtime's flags (docs/protocol.md, `dropzero runtime --help`). The journal
  # URL arrives as $DROPZERO_JOURNAL from a secret; the task id comes from the task metadata
  # endpoint; the EMF lines on stderr carry the autoscaling metric.
  runtime_command = concat([
    "--bind", "0.0.0.0",
    "--port", tostring(var.container.port),
    "--mode", var.runtime.mode,
    "--llm-url", var.runtime.llm_url,
    "--keepalive", "${var.runtime.keepalive_seconds}s",
    "--drain-timeout", "${var.runtime.drain_timeout_seconds}s",
    # Hyper closes idle keep-alive connections after the header read timeout; above the ALB's
    # idle timeout, the ALB never reuses a connection the runtime is closing (a 502).
    "--header-read-timeout", "${var.alb.idle_timeout + 10}s",
    "--emf-namespace", var.autoscaling.metric_namespace,
    "--emf-metric-name", var.autoscaling.metric_name,
    "--emf-interval", "${var.autoscaling.emf_interval}s",
    "--emf-dimension", "ClusterName=${local.cluster_name}",
    "--emf-dimension", "ServiceName=${var.name}",
  ], var.runtime.extra_args)

  health_check_command = var.container.health_check.command != null ? var.container.health_check.command : [
    "CMD", "curl", "--fail", "--silent", "--show-error", "--max-time", "2",
    "http://127.0.0.1:${var.container.port}/healthz",
  ]

  secrets = concat(
    [{ name = var.llm_api_key.env_name, valueFrom = data.aws_secretsmanager_secret.llm_api_key.arn }],
    local.has_journal ? [{ name = "DROPZERO_JOURNAL", valueFrom = local.journal_secret_arn }] : [],
  )

  container_definition = {
    name      = local.container_name
    image     = var.container.image
    essential = true
    command   = var.container.command != null ? var.container.command : local.runtime_command
    portMappings = [{
      name          = "http"
      containerPort = var.container.port
      protocol      = "tcp"
    }]
    environment = [for k in sort(keys(var.container.environment)) : { name = k, value = var.container.environment[k] }]
    secrets     = local.secrets
    # ECS sends SIGTERM, waits this long, then SIGKILL: the runtime's drain fits inside.
    stopTimeout = var.runtime.stop_timeout_seconds
    healthCheck = {
      command     = local.health_check_command
      interval    = var.container.health_check.interval
      timeout     = var.container.health_check.timeout
      retries     = var.container.health_check.retries
      startPeriod = var.container.health_check.start_period
    }
    readonlyRootFilesystem = true
    mountPoints = [{
      sourceVolume  = "tmp"
      containerPath = "/tmp"
      readOnly      = false
    }]
    # Every open SSE stream is a socket; the default soft limit (1024) caps a task far below
    # what it can hold.
    ulimits = [{
      name      = "nofile"
      softLimit = var.container.nofile
      hardLimit = var.container.nofile
    }]
    linuxParameters = {
      # An init process reaps zombies and forwards SIGTERM to the runtime (and ECS Exec
      # sessions need it).
      initProcessEnabled = true
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = local.log_group_name
        awslogs-region        = local.region
        awslogs-stream-prefix = "runtime"
        # Never block the runtime on CloudWatch: a slow log API must not stall streams.
        mode            = "non-blocking"
        max-buffer-size = "25m"
      }
    }
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.container.cpu
  memory                   = var.container.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.container_definition])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.container.cpu_architecture
  }

  # Fargate task storage, writable; the root filesystem stays read-only.
  volume {
    name = "tmp"
  }

  tags = local.tags
}

resource "aws_ecs_service" "this" {
  name             = var.name
  cluster          = local.create_cluster ? aws_ecs_cluster.this[0].arn : local.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # Only the first apply sets it; afterwards autoscaling owns it (see lifecycle below).
  desired_count = var.autoscaling.min_capacity

  deployment_minimum_healthy_percent = var.deployment.minimum_healthy_percent
  deployment_maximum_percent         = var.deployment.maximum_percent
  health_check_grace_period_seconds  = var.deployment.health_check_grace_period_seconds

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  enable_execute_command  = var.enable_execute_command
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  network_configuration {
    subnets          = var.network.service_subnet_ids
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = var.network.assign_public_ip
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = var.container.port
  }

  # A target group can only be used once it is attached to a load balancer.
  depends_on = [aws_lb_listener.https, aws_iam_role_policy.execution]

  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = local.tags
}

resource "aws_security_group" "service" {
  name_prefix = "${var.name}-tasks-"
  description = "Tasks of ${var.name}: traffic from its ALB only"
  vpc_id      = var.network.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-tasks" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "service_from_alb" {
  security_group_id            = aws_security_group.service.id
  description                  = "The runtime port, from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.container.port
  to_port                      = var.container.port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "service_https" {
  for_each = toset(var.network.egress_cidr_blocks)

  security_group_id = aws_security_group.service.id
  description       = "HTTPS: LLM API, ECR, Secrets Manager, CloudWatch Logs, ECS agent APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "service_to_redis" {
  count = local.create_redis ? 1 : 0

  security_group_id            = aws_security_group.service.id
  description                  = "The journal (ElastiCache Redis, TLS)"
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
  referenced_security_group_id = aws_security_group.redis[0].id
}

resource "aws_vpc_security_group_egress_rule" "service_to_existing_journal" {
  for_each = toset(try(var.journal.existing.cidr_blocks, []))

  security_group_id = aws_security_group.service.id
  description       = "The journal (existing Redis, TLS)"
  ip_protocol       = "tcp"
  from_port         = local.redis_port
  to_port           = local.redis_port
  cidr_ipv4         = each.value
}
