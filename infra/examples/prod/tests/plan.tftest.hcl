# The example planned with its own terraform.tfvars against a mocked AWS provider.

mock_provider "aws" {
  source          = "../../modules/agent-runtime/tests/mocks"
  override_during = plan
}

run "plan" {
  command = plan

  assert {
    condition     = output.dropzero_target.kind == "ecs" && output.dropzero_target.service == var.name && output.dropzero_target.cluster == var.name
    error_message = "The environment's dropzero [target] names its service."
  }
  assert {
    condition     = output.dropzero_local_target.deregistration_delay == (var.drain_strategy == "drain" ? "${var.longest_session_seconds}s" : "30s")
    error_message = "The deregistration delay follows the drain strategy."
  }
  assert {
    condition     = output.dropzero_local_target.journal == (var.create_journal ? "redis" : "memory")
    error_message = "A journal exists exactly when asked for."
  }
  assert {
    condition     = output.dropzero_autoscaling.target_value == var.sessions_per_task && output.dropzero_autoscaling.min == var.min_tasks
    error_message = "Autoscaling tracks the environment's sessions per task."
  }
}
