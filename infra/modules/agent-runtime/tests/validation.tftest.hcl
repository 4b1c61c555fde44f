# One run per validation rule: each breaks exactly one rule and expects exactly that
# variable to fail. A rule without a run here is a rule nobody checked.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  name = "agents"
  network = {
    vpc_id             = "vpc-0123456789abcdef0"
    service_subnet_ids = ["subnet-0aaa"]
    alb_subnet_ids     = ["subnet-0ccc", "subnet-0ddd"]
  }
  container = {
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/finn-runtime:1.4.2"
  }
  alb = {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
  }
}

run "valid_defaults_plan" {
  command = plan
}

run "rejects_name_format" {
  command = plan
  variables {
    name = "Agents_1"
  }
  expect_failures = [var.name]
}

run "rejects_network_subnets" {
  command = plan
  variables {
    network = { vpc_id = "vpc-0123456789abcdef0", service_subnet_ids = ["subnet-0aaa"], alb_subnet_ids = ["subnet-0ccc"] }
  }
  expect_failures = [var.network]
}

run "rejects_cluster_container_insights" {
  command = plan
  variables {
    cluster = { container_insights = "on" }
  }
  expect_failures = [var.cluster]
}

run "rejects_container_cpu" {
  command = plan
  variables {
    container = { image = "img:1", cpu = 1000 }
  }
  expect_failures = [var.container]
}

run "rejects_container_memory" {
  command = plan
  variables {
    container = { image = "img:1", cpu = 512, memory = 8192 }
  }
  expect_failures = [var.container]
}

run "rejects_container_port" {
  command = plan
  variables {
    container = { image = "img:1", port = 70000 }
  }
  expect_failures = [var.container]
}

run "rejects_container_cpu_architecture" {
  command = plan
  variables {
    container = { image = "img:1", cpu_architecture = "arm" }
  }
  expect_failures = [var.container]
}

run "rejects_container_nofile" {
  command = plan
  variables {
    container = { image = "img:1", nofile = 100 }
  }
  expect_failures = [var.container]
}

run "rejects_container_health_check" {
  command = plan
  variables {
    container = { image = "img:1", health_check = { interval = 1 } }
  }
  expect_failures = [var.container]
}

run "rejects_runtime_mode" {
  command = plan
  variables {
    runtime = { mode = "fast" }
  }
  expect_failures = [var.runtime]
}

run "rejects_runtime_stop_timeout_range" {
  command = plan
  variables {
    runtime = { stop_timeout_seconds = 300 }
  }
  expect_failures = [var.runtime]
}

run "rejects_runtime_drain_below_stop_timeout" {
  command = plan
  variables {
    runtime = { stop_timeout_seconds = 120, drain_timeout_seconds = 120 }
  }
  expect_failures = [var.runtime]
}

run "rejects_runtime_keepalive_range" {
  command = plan
  variables {
    runtime = { keepalive_seconds = 0 }
  }
  expect_failures = [var.runtime]
}

run "rejects_llm_api_key_names" {
  command = plan
  variables {
    llm_api_key = { secret_name = "bad name!" }
  }
  expect_failures = [var.llm_api_key]
}

run "rejects_llm_api_key_kms_arn" {
  command = plan
  variables {
    llm_api_key = { kms_key_arn = "key-123" }
  }
  expect_failures = [var.llm_api_key]
}

run "rejects_drain_strategy_value" {
  command = plan
  variables {
    drain_strategy = "blue-green"
  }
  expect_failures = [var.drain_strategy]
}

run "rejects_handoff_needs_journal" {
  command = plan
  variables {
    drain_strategy = "handoff"
  }
  expect_failures = [var.drain_strategy]
}

run "rejects_handoff_needs_resilient_mode" {
  command = plan
  variables {
    drain_strategy = "handoff"
    runtime        = { mode = "naive" }
    journal        = { existing = { url_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:r-AbCdEf", cidr_blocks = ["10.0.0.0/16"] } }
  }
  expect_failures = [var.drain_strategy]
}

run "rejects_longest_session_range" {
  command = plan
  variables {
    longest_session_seconds      = 4000
    deregistration_delay_seconds = 3600
  }
  expect_failures = [var.longest_session_seconds]
}

run "rejects_deregistration_delay_range" {
  command = plan
  variables {
    deregistration_delay_seconds = 4000
  }
  expect_failures = [var.deregistration_delay_seconds]
}

run "rejects_drain_delay_covers_longest_session" {
  command = plan
  variables {
    deregistration_delay_seconds = 60
  }
  expect_failures = [var.deregistration_delay_seconds]
}

run "rejects_alb_certificate_arn" {
  command = plan
  variables {
    alb = { certificate_arn = "my-cert" }
  }
  expect_failures = [var.alb]
}

run "rejects_alb_tls_policy" {
  command = plan
  variables {
    alb = { certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/x", ssl_policy = "ELBSecurityPolicy-2016-08" }
  }
  expect_failures = [var.alb]
}

run "rejects_alb_idle_timeout_range" {
  command = plan
  variables {
    alb = { certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/x", idle_timeout = 5000 }
  }
  expect_failures = [var.alb]
}

run "rejects_alb_idle_timeout_above_keepalive" {
  command = plan
  variables {
    alb = { certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/x", idle_timeout = 10 }
  }
  expect_failures = [var.alb]
}

run "rejects_alb_health_check" {
  command = plan
  variables {
    alb = { certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/x", health_check = { interval = 10, timeout = 10 } }
  }
  expect_failures = [var.alb]
}

run "rejects_deployment_percents" {
  command = plan
  variables {
    deployment = { maximum_percent = 250 }
  }
  expect_failures = [var.deployment]
}

run "rejects_deployment_grace_period" {
  command = plan
  variables {
    deployment = { health_check_grace_period_seconds = -1 }
  }
  expect_failures = [var.deployment]
}

run "rejects_autoscaling_capacity" {
  command = plan
  variables {
    autoscaling = { min_capacity = 3, max_capacity = 2 }
  }
  expect_failures = [var.autoscaling]
}

run "rejects_autoscaling_target_value" {
  command = plan
  variables {
    autoscaling = { target_value = 0 }
  }
  expect_failures = [var.autoscaling]
}

run "rejects_autoscaling_cooldowns" {
  command = plan
  variables {
    autoscaling = { scale_in_cooldown = -5 }
  }
  expect_failures = [var.autoscaling]
}

run "rejects_autoscaling_metric_names" {
  command = plan
  variables {
    autoscaling = { metric_namespace = "AWS/ECS" }
  }
  expect_failures = [var.autoscaling]
}

run "rejects_autoscaling_emf_interval" {
  command = plan
  variables {
    autoscaling = { emf_interval = 120 }
  }
  expect_failures = [var.autoscaling]
}

run "rejects_logs_retention" {
  command = plan
  variables {
    logs = { retention_in_days = 42 }
  }
  expect_failures = [var.logs]
}

run "rejects_journal_one_kind" {
  command = plan
  variables {
    journal = { existing = { url_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:r-AbCdEf", cidr_blocks = ["10.0.0.0/16"] }, elasticache = { subnet_ids = ["subnet-0aaa"] } }
  }
  expect_failures = [var.journal]
}

run "rejects_journal_existing_secret_arn" {
  command = plan
  variables {
    journal = { existing = { url_secret_arn = "rediss://redis:6379", cidr_blocks = ["10.0.0.0/16"] } }
  }
  expect_failures = [var.journal]
}

run "rejects_journal_elasticache_size" {
  command = plan
  variables {
    journal = { elasticache = { subnet_ids = ["subnet-0aaa"], num_cache_clusters = 9 } }
  }
  expect_failures = [var.journal]
}

run "rejects_journal_key_prefix" {
  command = plan
  variables {
    journal = { key_prefix = "a b" }
  }
  expect_failures = [var.journal]
}
