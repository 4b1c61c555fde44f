# Lookups and the values several files share. ARNs the IAM policies scope to are built
# from names here (not read from the resources), so the policies are known at plan time
# and the tests can assert them exactly.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# The LLM API key is looked up by name: the secret is managed outside this module (rotated
# by whoever owns the key), and the task only ever gets it through `valueFrom`.
data "aws_secretsmanager_secret" "llm_api_key" {
  name = var.llm_api_key.secret_name
}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  create_cluster = var.cluster.existing_name == null
  cluster_name   = coalesce(var.cluster.existing_name, var.name)
  cluster_arn    = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:cluster/${local.cluster_name}"

  log_group_name = "/ecs/${var.name}"
  log_group_arn  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"

  # An ECR image (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]) gets pull
  # permissions on exactly that repository; any other registry gets none.
  ecr_image = try(regex("^(?P<account>[0-9]{12})\\.dkr\\.ecr\\.(?P<region>[a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(?P<repository>[a-z0-9._/-]+?)(?:[:@].*)?$", var.container.image), null)
  ecr_repository_arn = (local.ecr_image == null ? null :
  "arn:${local.partition}:ecr:${local.ecr_image.region}:${local.ecr_image.account}:repository/${local.ecr_image.repository}")

  # The journal: which secret carries its URL, and whether this module creates it.
  create_redis = var.journal.elasticache != null
  has_journal  = local.create_redis || var.journal.existing != null
  # Secrets Manager appends "-" and six random characters to a secret's name in its ARN.
  redis_url_secret_name        = "${var.name}/journal-url"
  redis_auth_token_secret_name = "${var.name}/journal-auth-token"
  redis_url_secret_arn_pattern = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.redis_url_secret_name}-??????"
  journal_secret_arn = (local.create_redis ? aws_secretsmanager_secret.journal_url[0].arn :
  try(var.journal.existing.url_secret_arn, null))
  # What the execution role may read for the journal (a pattern when the module creates it,
  # so the policy does not wait for the secret to exist).
  journal_secret_policy_arn = local.create_redis ? local.redis_url_secret_arn_pattern : try(var.journal.existing.url_secret_arn, null)
  redis_port                = local.create_redis ? 6379 : try(var.journal.existing.port, null)

  deregistration_delay = coalesce(
    var.deregistration_delay_seconds,
    var.drain_strategy == "drain" ? var.longest_session_seconds : 30,
  )

  # Customer managed keys the execution role may use to decrypt the secrets it injects.
  secret_kms_key_arns = compact([
    var.llm_api_key.kms_key_arn,
    try(var.journal.existing.kms_key_arn, null),
    try(var.journal.elasticache.kms_key_arn, null),
  ])

  container_name = "runtime"

  tags = merge(var.tags, { "dropzero:module" = "agent-runtime" })
}
