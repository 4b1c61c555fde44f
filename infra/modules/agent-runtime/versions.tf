# Terraform >= 1.9: variable validations refer to other variables (drain timeout < stop
# timeout, keepalive < idle timeout, `handoff` needs a journal). No provider block here: the
# caller configures the AWS provider (region, credentials, default tags).
terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 6.0"
    }
  }
}
