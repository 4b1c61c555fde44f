terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 6.0"
    }
  }

  # Keep state remote and encrypted (it holds the journal's auth token), e.g.:
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "agent-runtime/ENV.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}
