# Fake values for the AWS provider in `terraform test` (offline, no credentials). Data
# sources get fixed, realistic values so ARNs built from them are exact; policy documents
# get a valid JSON body (the real rendering is the provider's; the tests assert the
# statements that go into it).

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:root"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "eu-west-1"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

mock_data "aws_secretsmanager_secret" {
  defaults = {
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mithrl/finn/anthropic-api-key-AbCdEf"
  }
}

mock_data "aws_secretsmanager_random_password" {
  defaults = {
    random_password = "mockTokenForTestsOnlymockTokenForTestsOnlymockTokenForTestsOnly0" #checkov:skip=CKV_SECRET_6:a fixed fake token for plan tests
  }
}

mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  }
}

mock_resource "aws_secretsmanager_secret" {
  defaults = {
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agents/journal-url-XyZ123"
  }
}

mock_resource "aws_lb" {
  defaults = {
    arn      = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/agents/0123456789abcdef"
    dns_name = "agents-1234567890.eu-west-1.elb.amazonaws.com"
    zone_id  = "Z32O12XQLNTSW2"
  }
}

mock_resource "aws_elasticache_replication_group" {
  defaults = {
    primary_endpoint_address = "master.agents-journal.abc123.euw1.cache.amazonaws.com"
  }
}
