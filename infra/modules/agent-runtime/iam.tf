# Two roles, least privilege. The execution role (used by ECS to start a task) reads exactly
# the secrets the container gets through `valueFrom` and writes to this service's log group;
# the task role (what the runtime itself may do) gets and updates scale-in protection on
# tasks of its own cluster, and nothing else unless ECS Exec is turned on. No "*" resource on
# an action that can be scoped; the only "*" is ecr:GetAuthorizationToken and the SSM
# channel actions, which AWS does not allow to scope.

data "aws_iam_policy_document" "assume_by_ecs_tasks" {
  statement {
    sid     = "EcsTasksAssume"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    # Only tasks of this account may assume the roles (confused-deputy guard).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

# --- execution role ----------------------------------------------------------------------

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "ReadInjectedSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = compact([data.aws_secretsmanager_secret.llm_api_key.arn, local.journal_secret_policy_arn])
  }

  dynamic "statement" {
    for_each = length(local.secret_kms_key_arns) > 0 ? [local.secret_kms_key_arns] : []
    content {
      sid       = "DecryptInjectedSecrets"
      actions   = ["kms:Decrypt"]
      resources = statement.value
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }

  statement {
    sid       = "WriteOwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn}:log-stream:*"]
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [local.ecr_repository_arn]
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : ["*"]
    content {
      # GetAuthorizationToken is account-wide; AWS accepts no resource but "*".
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "ECS execution role of ${var.name}: pull the image, inject its secrets, write its logs"
  assume_role_policy = data.aws_iam_policy_document.assume_by_ecs_tasks.json

  tags = local.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- task role ---------------------------------------------------------------------------

data "aws_iam_policy_document" "task" {
  # The runtime asks the ECS agent ($ECS_AGENT_URI/task-protection/v1/state) to protect its
  # task from scale-in while sessions run; the agent calls these with the task role.
  statement {
    sid       = "OwnTaskScaleInProtection"
    actions   = ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${local.cluster_name}/*"]
  }

  dynamic "statement" {
    for_each = var.enable_execute_command ? ["exec"] : []
    content {
      # ECS Exec's SSM channels; AWS accepts no resource but "*" for these actions.
      sid = "EcsExecChannels"
      actions = [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  description        = "ECS task role of ${var.name}: its own tasks' scale-in protection"
  assume_role_policy = data.aws_iam_policy_document.assume_by_ecs_tasks.json

  tags = local.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
