# Target tracking on active sessions per task. CPU is not the signal: an SSE task waiting on
# the LLM is idle on CPU while it holds all the sessions it can.
#
# The metric: every task prints a CloudWatch Embedded Metric Format line on stderr every
# `emf_interval` seconds (`dropzero runtime --emf-namespace ...`): `metric_name` = its
# active sessions, dimensions ClusterName and ServiceName, the same for every task of the
# service. awslogs ships the line and CloudWatch extracts the metric, so the task role
# needs no cloudwatch:PutMetricData. All tasks report at the same interval, so the
# `Average` statistic over a one-minute datapoint is the mean over tasks of each task's
# active sessions: exactly "active sessions per task", with no metric math over
# RunningTaskCount (which would need Container Insights' metric and a Sum that depends on
# the interval).

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${local.cluster_name}/${aws_ecs_service.this.name}"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity

  tags = local.tags
}

resource "aws_appautoscaling_policy" "active_sessions" {
  name               = "${var.name}-active-sessions-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  resource_id        = aws_appautoscaling_target.this.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target_value
    scale_out_cooldown = var.autoscaling.scale_out_cooldown
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown
    # Scale-in stops only unprotected tasks: the runtime protects its task while sessions run.
    disable_scale_in = false

    customized_metric_specification {
      namespace   = var.autoscaling.metric_namespace
      metric_name = var.autoscaling.metric_name
      statistic   = "Average"
      unit        = "Count"

      dimensions {
        name  = "ClusterName"
        value = local.cluster_name
      }
      dimensions {
        name  = "ServiceName"
        value = var.name
      }
    }
  }
}
