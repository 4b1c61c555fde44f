# The module with its defaults (drain_strategy = "drain", no journal), planned against a
# mocked AWS provider: the rendered container definition, the ALB, target group and
# listeners, the service's deployment settings and the autoscaling policy.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  name = "agents"
  network = {
    vpc_id             = "vpc-0123456789abcdef0"
    service_subnet_ids = ["subnet-0aaa", "subnet-0bbb"]
    alb_subnet_ids     = ["subnet-0ccc", "subnet-0ddd"]
  }
  container = {
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/finn-runtime:1.4.2"
  }
  alb = {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
  }
}

run "container_definition" {
  command = plan

  assert {
    condition     = length(jsondecode(aws_ecs_task_definition.this.container_definitions)) == 1
    error_message = "One container per task."
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].stopTimeout == 120
    error_message = "stopTimeout must default to Fargate's maximum, 120 s."
  }
  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets == [
      { name = "ANTHROPIC_API_KEY", valueFrom = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mithrl/finn/anthropic-api-key-AbCdEf" },
    ]
    error_message = "Exactly the LLM key is injected, through valueFrom, when there is no journal."
  }
  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].healthCheck == {
      command     = ["CMD", "curl", "--fail", "--silent", "--show-error", "--max-time", "2", "http://127.0.0.1:8080/healthz"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 15
    }
    error_message = "The container health check probes /healthz (liveness, not readiness)."
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].ulimits == [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
    error_message = "nofile must be raised for many open streams."
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].readonlyRootFilesystem == true
    error_message = "The root filesystem must be read-only."
  }
  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].mountPoints == [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }] &&
      one([for v in aws_ecs_task_definition.this.volume : v.name]) == "tmp"
    )
    error_message = "A writable /tmp volume must be mounted."
  }
  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].logConfiguration == {
      logDriver = "awslogs"
      options = {
        awslogs-group         = "/ecs/agents"
        awslogs-region        = "eu-west-1"
        awslogs-stream-prefix = "runtime"
        mode                  = "non-blocking"
        max-buffer-size       = "25m"
      }
    }
    error_message = "Logs go to the module's log group through awslogs."
  }
  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].command == [
      "--bind", "0.0.0.0", "--port", "8080", "--mode", "resilient",
      "--llm-url", "https://api.anthropic.com", "--keepalive", "15s", "--drain-timeout", "100s",
      "--header-read-timeout", "130s",
      "--emf-namespace", "dropzero", "--emf-metric-name", "ActiveSessions", "--emf-interval", "10s",
      "--emf-dimension", "ClusterName=agents", "--emf-dimension", "ServiceName=agents",
    ]
    error_message = "The reference runtime's flags: bind all interfaces, drain within the stop timeout, publish the EMF metric."
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].linuxParameters.initProcessEnabled == true
    error_message = "An init process forwards signals."
  }
  assert {
    condition     = aws_ecs_task_definition.this.requires_compatibilities == toset(["FARGATE"]) && aws_ecs_task_definition.this.network_mode == "awsvpc"
    error_message = "Fargate task definition in awsvpc mode."
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/ecs/agents" && aws_cloudwatch_log_group.this.retention_in_days == 365
    error_message = "The log group has a retention."
  }
  assert {
    condition     = one(aws_ecs_cluster.this[0].setting).name == "containerInsights" && one(aws_ecs_cluster.this[0].setting).value == "enabled"
    error_message = "Container Insights is on."
  }
}

run "service" {
  command = plan

  assert {
    condition     = aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback
    error_message = "The deployment circuit breaker rolls back."
  }
  assert {
    condition = (
      aws_ecs_service.this.deployment_minimum_healthy_percent == 100 &&
      aws_ecs_service.this.deployment_maximum_percent == 200 &&
      aws_ecs_service.this.health_check_grace_period_seconds == 30
    )
    error_message = "Rolling deploy: 100% healthy, 200% max, 30 s grace."
  }
  assert {
    condition     = aws_ecs_service.this.desired_count == 2 && aws_ecs_service.this.launch_type == "FARGATE"
    error_message = "The initial desired count is the autoscaling minimum."
  }
  assert {
    condition     = aws_ecs_service.this.enable_execute_command == false
    error_message = "ECS Exec is off by default."
  }
  assert {
    condition     = aws_ecs_service.this.network_configuration[0].assign_public_ip == false
    error_message = "Tasks get no public IP by default."
  }
  assert {
    condition     = one(aws_ecs_service.this.load_balancer).container_name == "runtime" && one(aws_ecs_service.this.load_balancer).container_port == 8080
    error_message = "The service registers the runtime's port."
  }
}

run "load_balancer_drain" {
  command = plan

  assert {
    condition     = aws_lb_target_group.this.deregistration_delay == "600"
    error_message = "drain: the deregistration delay covers the longest session (600 s)."
  }
  assert {
    condition     = aws_lb_target_group.this.load_balancing_algorithm_type == "least_outstanding_requests"
    error_message = "Open streams are balanced by least outstanding requests."
  }
  assert {
    condition = (
      aws_lb_target_group.this.health_check[0].path == "/readyz" &&
      aws_lb_target_group.this.health_check[0].matcher == "200" &&
      aws_lb_target_group.this.health_check[0].interval == 10 &&
      aws_lb_target_group.this.health_check[0].timeout == 5 &&
      aws_lb_target_group.this.health_check[0].healthy_threshold == 2 &&
      aws_lb_target_group.this.health_check[0].unhealthy_threshold == 2
    )
    error_message = "The target group checks readiness (/readyz answers 503 while a task drains)."
  }
  assert {
    condition     = aws_lb_target_group.this.target_type == "ip" && aws_lb_target_group.this.protocol == "HTTP" && aws_lb_target_group.this.port == 8080
    error_message = "awsvpc tasks register by IP."
  }
  assert {
    condition = (
      aws_lb.this.idle_timeout == 120 &&
      aws_lb.this.drop_invalid_header_fields == true &&
      aws_lb.this.enable_deletion_protection == true &&
      aws_lb.this.internal == false
    )
    error_message = "ALB: idle timeout above the keepalive, invalid headers dropped, deletion protection on."
  }
  assert {
    condition = (
      aws_lb_listener.https.port == 443 &&
      aws_lb_listener.https.protocol == "HTTPS" &&
      aws_lb_listener.https.ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06" &&
      aws_lb_listener.https.certificate_arn == "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555" &&
      aws_lb_listener.https.default_action[0].type == "forward"
    )
    error_message = "HTTPS listener with the certificate and a TLS 1.2+/1.3 policy."
  }
  assert {
    condition = (
      aws_lb_listener.http_redirect.port == 80 &&
      aws_lb_listener.http_redirect.default_action[0].type == "redirect" &&
      aws_lb_listener.http_redirect.default_action[0].redirect[0].protocol == "HTTPS" &&
      aws_lb_listener.http_redirect.default_action[0].redirect[0].port == "443" &&
      aws_lb_listener.http_redirect.default_action[0].redirect[0].status_code == "HTTP_301"
    )
    error_message = "Port 80 only redirects to HTTPS."
  }
  assert {
    condition     = output.deregistration_delay_seconds == 600
    error_message = "The chosen delay is an output."
  }
}

run "autoscaling" {
  command = plan

  assert {
    condition = (
      aws_appautoscaling_target.this.resource_id == "service/agents/agents" &&
      aws_appautoscaling_target.this.scalable_dimension == "ecs:service:DesiredCount" &&
      aws_appautoscaling_target.this.min_capacity == 2 &&
      aws_appautoscaling_target.this.max_capacity == 10
    )
    error_message = "The scalable target is the service's desired count, 2-10."
  }
  assert {
    condition = (
      aws_appautoscaling_policy.active_sessions.policy_type == "TargetTrackingScaling" &&
      aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].target_value == 20 &&
      aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].scale_out_cooldown == 60 &&
      aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 300
    )
    error_message = "Target tracking with the given target value and cooldowns."
  }
  assert {
    condition = (
      aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].customized_metric_specification[0].namespace == "dropzero" &&
      aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].customized_metric_specification[0].metric_name == "ActiveSessions" &&
      aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].customized_metric_specification[0].statistic == "Average" &&
      aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].customized_metric_specification[0].dimensions == toset([
        { name = "ClusterName", value = "agents" },
        { name = "ServiceName", value = "agents" },
      ])
    )
    error_message = "The policy tracks the runtime's EMF metric (Average over tasks = sessions per task), with the dimensions the runtime is told to emit."
  }
  assert {
    condition     = length(aws_appautoscaling_policy.active_sessions.target_tracking_scaling_policy_configuration[0].predefined_metric_specification) == 0
    error_message = "CPU (a predefined metric) is not the signal."
  }
}

run "outputs_for_dropzero" {
  command = plan

  assert {
    condition = (
      output.dropzero_target.kind == "ecs" &&
      output.dropzero_target.cluster == "agents" &&
      output.dropzero_target.service == "agents" &&
      output.dropzero_target.region == "eu-west-1" &&
      output.dropzero_target.url == "https://agents-1234567890.eu-west-1.elb.amazonaws.com"
    )
    error_message = "The [target] block for dropzero's ECS target."
  }
  assert {
    condition = (
      output.dropzero_local_target.stop_timeout == "120s" &&
      output.dropzero_local_target.deregistration_delay == "600s" &&
      output.dropzero_local_target.journal == "memory" &&
      output.dropzero_local_target.router.algorithm == "least_outstanding"
    )
    error_message = "The local rehearsal mirrors the service's settings."
  }
}

run "existing_cluster" {
  command = plan

  variables {
    cluster = { existing_name = "platform" }
  }

  assert {
    condition     = length(aws_ecs_cluster.this) == 0 && aws_ecs_service.this.cluster == "arn:aws:ecs:eu-west-1:123456789012:cluster/platform"
    error_message = "An existing cluster is joined, not created."
  }
  assert {
    condition     = aws_appautoscaling_target.this.resource_id == "service/platform/agents"
    error_message = "Autoscaling targets the service in that cluster."
  }
}
