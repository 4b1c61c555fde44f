# The two roles' policy documents, statement by statement: exact actions and resources, and
# no "*" resource except on actions AWS does not let us scope.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

override_resource {
  target          = aws_iam_role.execution
  override_during = plan
  values          = { arn = "arn:aws:iam::123456789012:role/agents-exec-1", id = "agents-exec-1" }
}

override_resource {
  target          = aws_iam_role.task
  override_during = plan
  values          = { arn = "arn:aws:iam::123456789012:role/agents-task-1", id = "agents-task-1" }
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
  # Actions AWS accepts only with Resource "*".
  unscopable = ["ecr:GetAuthorizationToken", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]
}

run "execution_role" {
  command = plan

  assert {
    condition = { for s in data.aws_iam_policy_document.execution.statement : s.sid => { actions = s.actions, resources = s.resources } } == {
      ReadInjectedSecrets = {
        actions   = toset(["secretsmanager:GetSecretValue"])
        resources = toset(["arn:aws:secretsmanager:eu-west-1:123456789012:secret:mithrl/finn/anthropic-api-key-AbCdEf"])
      }
      WriteOwnLogGroup = {
        actions   = toset(["logs:CreateLogStream", "logs:PutLogEvents"])
        resources = toset(["arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/agents:log-stream:*"])
      }
      PullImage = {
        actions   = toset(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
        resources = toset(["arn:aws:ecr:eu-west-1:123456789012:repository/finn-runtime"])
      }
      EcrLogin = {
        actions   = toset(["ecr:GetAuthorizationToken"])
        resources = toset(["*"])
      }
    }
    error_message = "Execution role: the one LLM secret, its own log group, its own image repository."
  }
  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.execution.statement : !contains(s.resources, "*") || length(setsubtract(s.actions, var.unscopable)) == 0])
    error_message = "No wildcard resource on a scopable action."
  }
  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.execution.statement : s.effect == null || s.effect == "Allow"])
    error_message = "Allow statements only."
  }
}

run "task_role" {
  command = plan

  assert {
    condition = { for s in data.aws_iam_policy_document.task.statement : s.sid => { actions = s.actions, resources = s.resources } } == {
      OwnTaskScaleInProtection = {
        actions   = toset(["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"])
        resources = toset(["arn:aws:ecs:eu-west-1:123456789012:task/agents/*"])
      }
    }
    error_message = "Task role: scale-in protection of its own cluster's tasks, nothing else."
  }
  assert {
    condition = (
      one(data.aws_iam_policy_document.assume_by_ecs_tasks.statement).actions == toset(["sts:AssumeRole"]) &&
      one(one(data.aws_iam_policy_document.assume_by_ecs_tasks.statement).principals).identifiers == toset(["ecs-tasks.amazonaws.com"]) &&
      jsonencode({ for c in one(data.aws_iam_policy_document.assume_by_ecs_tasks.statement).condition : c.variable => [c.test, c.values] }) == jsonencode({
        "aws:SourceAccount" = ["StringEquals", ["123456789012"]]
        "aws:SourceArn"     = ["ArnLike", ["arn:aws:ecs:eu-west-1:123456789012:*"]]
      })
    )
    error_message = "Only ECS tasks of this account assume the roles."
  }
  assert {
    condition = (
      aws_ecs_task_definition.this.execution_role_arn == "arn:aws:iam::123456789012:role/agents-exec-1" &&
      aws_ecs_task_definition.this.task_role_arn == "arn:aws:iam::123456789012:role/agents-task-1" &&
      aws_iam_role_policy.execution.role == "agents-exec-1" && aws_iam_role_policy.task.role == "agents-task-1"
    )
    error_message = "Two distinct roles."
  }
}

run "exec_kms_and_journal" {
  command = plan

  variables {
    enable_execute_command = true
    llm_api_key = {
      secret_name = "team/llm-key"
      env_name    = "LLM_API_KEY"
      kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    }
    drain_strategy = "handoff"
    journal = {
      elasticache = { subnet_ids = ["subnet-0aaa"] }
    }
  }

  assert {
    condition = { for s in data.aws_iam_policy_document.execution.statement : s.sid => s.resources }["ReadInjectedSecrets"] == toset([
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mithrl/finn/anthropic-api-key-AbCdEf",
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agents/journal-url-??????",
    ])
    error_message = "With a created journal, the execution role also reads exactly its URL secret (name + Secrets Manager's six-character suffix)."
  }
  assert {
    condition = (
      { for s in data.aws_iam_policy_document.execution.statement : s.sid => s }["DecryptInjectedSecrets"].actions == toset(["kms:Decrypt"]) &&
      { for s in data.aws_iam_policy_document.execution.statement : s.sid => s }["DecryptInjectedSecrets"].resources == toset(["arn:aws:kms:eu-west-1:123456789012:key/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]) &&
      jsonencode([for c in { for s in data.aws_iam_policy_document.execution.statement : s.sid => s }["DecryptInjectedSecrets"].condition : [c.test, c.variable, c.values]]) == jsonencode([
        ["StringEquals", "kms:ViaService", ["secretsmanager.eu-west-1.amazonaws.com"]],
      ])
    )
    error_message = "kms:Decrypt on the customer key only, only through Secrets Manager."
  }
  assert {
    condition = { for s in data.aws_iam_policy_document.task.statement : s.sid => s.actions } == {
      OwnTaskScaleInProtection = toset(["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"])
      EcsExecChannels          = toset(["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"])
    }
    error_message = "ECS Exec adds only the SSM channel actions."
  }
  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.task.statement : !contains(s.resources, "*") || length(setsubtract(s.actions, var.unscopable)) == 0])
    error_message = "No wildcard resource on a scopable action."
  }
  assert {
    condition     = aws_ecs_service.this.enable_execute_command == true
    error_message = "ECS Exec is enabled on the service."
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets[0] == { name = "LLM_API_KEY", valueFrom = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mithrl/finn/anthropic-api-key-AbCdEf" }
    error_message = "The key's environment variable name is configurable."
  }
}

run "non_ecr_image" {
  command = plan

  variables {
    container = { image = "ghcr.io/example/agent-runtime:2.0" }
  }

  assert {
    condition     = !anytrue([for s in data.aws_iam_policy_document.execution.statement : length([for a in s.actions : a if startswith(a, "ecr:")]) > 0])
    error_message = "An image outside ECR gets no ECR permissions."
  }
}
