# The ALB in front of the tasks: HTTPS only (port 80 redirects), idle timeout above the
# runtime's keepalive so quiet streams stay open, least-outstanding-requests so open streams
# spread evenly, readiness checks on /readyz (503 while a task drains), and the
# deregistration delay the drain strategy calls for.

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:WAF is the caller's choice (attach a web ACL to alb_arn); SSE streams are long-lived and a managed rule set must be tested against them first.
  #checkov:skip=CKV_AWS_150:Deletion protection is alb.deletion_protection, on by default; the staging example turns it off on purpose.
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = var.alb.internal
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.network.alb_subnet_ids
  idle_timeout               = var.alb.idle_timeout
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb.deletion_protection
  enable_http2               = true

  dynamic "access_logs" {
    for_each = var.alb.access_logs_bucket == null ? [] : [var.alb.access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = var.alb.access_logs_prefix
      enabled = true
    }
  }

  tags = local.tags
}

resource "aws_lb_target_group" "this" {
  name        = var.name
  port        = var.container.port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.network.vpc_id

  # Every open SSE stream is an outstanding request: new sessions go to the task with the
  # fewest open streams, not round robin.
  load_balancing_algorithm_type = "least_outstanding_requests"
  # "drain": at least the longest session, so every stream ends on its old task.
  # "handoff": short; streams are cut, clients resume elsewhere from the shared journal.
  deregistration_delay = local.deregistration_delay

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.alb.health_check.path
    matcher             = "200"
    interval            = var.alb.health_check.interval
    timeout             = var.alb.health_check.timeout
    healthy_threshold   = var.alb.health_check.healthy_threshold
    unhealthy_threshold = var.alb.health_check.unhealthy_threshold
  }

  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "https" {
  #checkov:skip=CKV_AWS_103:ssl_policy is var.alb.ssl_policy, validated to be a TLS13-1-2 (TLS 1.2+1.3) or TLS13-1-3 policy; checkov cannot resolve a required variable.
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.alb.ssl_policy
  certificate_arn   = var.alb.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = local.tags
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }

  tags = local.tags
}

resource "aws_security_group" "alb" {
  name_prefix = "${var.name}-alb-"
  description = "ALB of ${var.name}: HTTPS (and the HTTP redirect) in, the tasks' port out"
  vpc_id      = var.network.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = { for pair in setproduct([443, 80], var.alb.ingress_cidr_blocks) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.alb.id
  description       = each.value[0] == 443 ? "HTTPS from clients" : "HTTP from clients (redirected to HTTPS)"
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]
  cidr_ipv4         = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "alb_to_service" {
  security_group_id            = aws_security_group.alb.id
  description                  = "The runtime port on the tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.container.port
  to_port                      = var.container.port
  referenced_security_group_id = aws_security_group.service.id
}
