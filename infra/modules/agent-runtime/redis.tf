# The optional shared journal: an ElastiCache Redis replication group (cluster mode off — the
# runtime's journal scripts touch several keys, so all keys must live on one shard), TLS in
# transit, encryption at rest, an auth token generated into Secrets Manager, reachable only
# from the service's security group. The runtime gets the whole `rediss://` URL from a
# second secret as $DROPZERO_JOURNAL.
#
# The auth token is generated once by Secrets Manager and kept (ignore_changes): it lives in
# the Terraform state, as any ElastiCache auth token set by Terraform does, so the state must
# be encrypted and access-controlled.

data "aws_secretsmanager_random_password" "journal_auth_token" {
  count = local.create_redis ? 1 : 0

  password_length = 64
  # Letters and digits only: valid as an ElastiCache token and inside a URL unescaped.
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "journal_auth_token" {
  #checkov:skip=CKV2_AWS_57:An ElastiCache auth token rotation must be coordinated with the replication group and a redeploy; rotate with `terraform apply -replace` on the secret version.
  count = local.create_redis ? 1 : 0

  name                    = local.redis_auth_token_secret_name
  description             = "AUTH token of the ${var.name} journal (ElastiCache Redis)"
  kms_key_id              = try(var.journal.elasticache.kms_key_arn, null)
  recovery_window_in_days = 7

  tags = local.tags
}

resource "aws_secretsmanager_secret_version" "journal_auth_token" {
  count = local.create_redis ? 1 : 0

  secret_id     = aws_secretsmanager_secret.journal_auth_token[0].id
  secret_string = data.aws_secretsmanager_random_password.journal_auth_token[0].random_password

  lifecycle {
    # The data source draws a new password on every plan; keep the first.
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret" "journal_url" {
  #checkov:skip=CKV2_AWS_57:The URL changes only with the auth token (see journal_auth_token).
  count = local.create_redis ? 1 : 0

  name                    = local.redis_url_secret_name
  description             = "rediss:// URL of the ${var.name} journal, injected as DROPZERO_JOURNAL"
  kms_key_id              = try(var.journal.elasticache.kms_key_arn, null)
  recovery_window_in_days = 7

  tags = local.tags
}

resource "aws_secretsmanager_secret_version" "journal_url" {
  count = local.create_redis ? 1 : 0

  secret_id = aws_secretsmanager_secret.journal_url[0].id
  secret_string = format("rediss://:%s@%s:%d/0?prefix=%s",
    aws_secretsmanager_secret_version.journal_auth_token[0].secret_string,
    aws_elasticache_replication_group.journal[0].primary_endpoint_address,
    local.redis_port,
    var.journal.key_prefix,
  )
}

resource "aws_elasticache_subnet_group" "journal" {
  count = local.create_redis ? 1 : 0

  name       = "${var.name}-journal"
  subnet_ids = var.journal.elasticache.subnet_ids

  tags = local.tags
}

resource "aws_elasticache_replication_group" "journal" {
  #checkov:skip=CKV2_AWS_50:Multi-AZ automatic failover is on whenever there is a replica (num_cache_clusters > 1); a one-node staging journal has nothing to fail over to.
  count = local.create_redis ? 1 : 0

  replication_group_id = "${var.name}-journal"
  description          = "Session journal of ${var.name} (dropzero runtime, Redis Streams)"
  engine               = "redis"
  engine_version       = var.journal.elasticache.engine_version
  node_type            = var.journal.elasticache.node_type
  port                 = local.redis_port
  num_cache_clusters   = var.journal.elasticache.num_cache_clusters
  # Failover needs a replica; with one node there is nothing to fail over to.
  automatic_failover_enabled = var.journal.elasticache.num_cache_clusters > 1
  multi_az_enabled           = var.journal.elasticache.num_cache_clusters > 1

  subnet_group_name  = aws_elasticache_subnet_group.journal[0].name
  security_group_ids = [aws_security_group.redis[0].id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.journal.elasticache.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = aws_secretsmanager_secret_version.journal_auth_token[0].secret_string

  snapshot_retention_limit   = var.journal.elasticache.snapshot_retention_limit
  auto_minor_version_upgrade = true
  apply_immediately          = false

  tags = local.tags
}

resource "aws_security_group" "redis" {
  count = local.create_redis ? 1 : 0

  name_prefix = "${var.name}-journal-"
  description = "Journal of ${var.name}: Redis from the service's tasks only"
  vpc_id      = var.network.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-journal" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_service" {
  count = local.create_redis ? 1 : 0

  security_group_id            = aws_security_group.redis[0].id
  description                  = "Redis (TLS) from the service's tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
  referenced_security_group_id = aws_security_group.service.id
}
