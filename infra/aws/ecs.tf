# Every role of `shop serve` is an ECS Fargate service running the same image.

locals {
  environment = {
    SHOP_ENVIRONMENT               = "production"
    SHOP_PUBLIC_URL                = var.public_url
    SHOP_DATABASE_URL              = "postgresql://eventshop@${aws_db_instance.postgres.address}:5432/eventshop?sslmode=require"
    SHOP_REDIS_URL                 = "rediss://${aws_elasticache_replication_group.main.primary_endpoint_address}:6379/0"
    SHOP_OPENSEARCH_URL            = "https://${aws_opensearch_domain.main.endpoint}"
    SHOP_KAFKA_BOOTSTRAP           = aws_msk_cluster.main.bootstrap_brokers_tls
    SHOP_KAFKA_SECURITY_PROTOCOL   = "SSL"
    SHOP_KAFKA_IDEMPOTENT_PRODUCER = "true"
    SHOP_KAFKA_REPLICATION_FACTOR  = "3"
    SHOP_WORKER_GROUP              = var.consumer_group
    SHOP_PAYMENT_GATEWAY           = "stripe"    # its keys are secrets, below
    SHOP_DATA_DIR                  = "/run/shop" # heartbeats of the relay and workers
    # The ALB's nodes live in the public subnets, and every request comes through
    # CloudFront (cdn.tf): only their X-Forwarded-For and X-Forwarded-Proto are
    # believed (the client is the rightmost hop outside them: the viewer CloudFront
    # saw). CloudFront's addresses are its origin-facing list, as of the last apply.
    SHOP_TRUSTED_PROXIES = join(",", concat(
      aws_subnet.public[*].cidr_block,
      sort([for entry in data.aws_ec2_managed_prefix_list.cloudfront.entries : entry.cidr]),
    ))
    # Notifications (notifications.tf); SHOP_VAPID_PRIVATE_KEY is a secret, below.
    SHOP_NOTIFY_EMAIL               = "ses"
    SHOP_NOTIFY_SMS                 = "sns"
    SHOP_NOTIFY_PUSH                = length(local.platform_applications) == 0 ? "off" : "sns"
    SHOP_NOTIFY_INBOX               = "dynamodb"
    SHOP_NOTIFY_QUEUE               = "sqs"
    SHOP_AWS_REGION                 = var.region
    SHOP_SES_SENDER                 = var.ses_sender
    SHOP_SES_CONFIGURATION_SET      = aws_sesv2_configuration_set.main.configuration_set_name
    SHOP_SNS_TOPIC_ARN_SES_FEEDBACK = aws_sns_topic.ses_feedback.arn
    SHOP_SNS_PLATFORM_APPLICATIONS  = jsonencode(local.platform_applications)
    SHOP_SQS_QUEUE_URLS             = jsonencode({ for channel, queue in aws_sqs_queue.delivery : channel => queue.url })
    SHOP_DYNAMODB_INBOX_TABLE       = aws_dynamodb_table.inbox.name
    SHOP_VAPID_SUBJECT              = coalesce(var.vapid_subject, "mailto:${var.ses_sender}")
    # The audit chain's signed heads (audit.tf); SHOP_AUDIT_SIGNING_KEY is a secret, below.
    SHOP_AUDIT_ANCHOR            = "s3"
    SHOP_AUDIT_S3_BUCKET         = aws_s3_bucket.audit_heads.id
    SHOP_AUDIT_S3_RETENTION_DAYS = var.audit_retention_days
    # Spans over OTLP/HTTP to the task's collector sidecar, which sends them to X-Ray.
    SHOP_OTEL_EXPORTER = "otlp"
  }
  # OpenTelemetry's own variables: the sidecar shares the task's network namespace.
  otel_environment = {
    OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:4318"
  }
  # Every secret reaches the tasks from Secrets Manager, never as a plain value in
  # the task definition (where anyone who may describe it reads it).
  secrets = concat([
    { name = "SHOP_SECRET_KEY", valueFrom = var.secret_key_arn },
    { name = "SHOP_ENCRYPTION_KEY", valueFrom = var.encryption_key_arn },
    { name = "SHOP_STRIPE_API_KEY", valueFrom = var.stripe_api_key_arn },
    { name = "SHOP_AUDIT_SIGNING_KEY", valueFrom = var.audit_signing_key_arn },
    # libpq reads PGPASSWORD: the URL above carries no password.
    { name = "PGPASSWORD", valueFrom = "${aws_db_instance.postgres.master_user_secret[0].secret_arn}:password::" },
    ], var.stripe_webhook_secret_arn == null ? [] : [
    { name = "SHOP_STRIPE_WEBHOOK_SECRET", valueFrom = var.stripe_webhook_secret_arn },
    ], var.vapid_private_key_arn == null ? [] : [
    { name = "SHOP_VAPID_PRIVATE_KEY", valueFrom = var.vapid_private_key_arn }, # turns Web Push on
    ], var.metrics_token_arn == null ? [] : [
    { name = "SHOP_METRICS_TOKEN", valueFrom = var.metrics_token_arn }, # serves /metrics to it
  ])
  log_groups = toset(["write-api", "read-api", "relay", "worker", "msk", "opensearch", "vpc-flow"])
}

resource "aws_cloudwatch_log_group" "main" {
  for_each          = local.log_groups
  name              = "/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_kms_key" "logs" {
  description         = "${var.name} logs"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Account"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
      }
    ]
  })
}

data "aws_caller_identity" "current" {}

resource "aws_ecs_cluster" "main" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# --- IAM: the execution role pulls the image and reads the secrets; the task role
# is what the code runs as. -------------------------------------------------------

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  name = "secrets"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([{
      Effect = "Allow"
      Action = ["secretsmanager:GetSecretValue"]
      # The secrets themselves (PGPASSWORD's names a JSON key after its secret's ARN).
      Resource = [for secret in local.secrets : split(":password::", secret.valueFrom)[0]]
      }], var.secrets_kms_key_arn == null ? [] : [{
      # Decrypting them, through Secrets Manager only.
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = [var.secrets_kms_key_arn]
      Condition = { StringEquals = { "kms:ViaService" = "secretsmanager.${var.region}.amazonaws.com" } }
    }])
  })
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

# --- one task definition and service per role ---------------------------------------

resource "aws_ecs_task_definition" "role" {
  for_each                 = var.services
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  volume {
    name = "run" # task-local scratch space: the root filesystem is read-only
  }
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }
  container_definitions = jsonencode([{
    name                   = each.key
    image                  = var.image
    command                = each.value.command
    essential              = true
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "run", containerPath = "/run/shop", readOnly = false }]
    environment            = [for k, v in merge(local.environment, local.otel_environment) : { name = k, value = v }]
    dependsOn              = [{ containerName = "otel-collector", condition = "START" }]
    secrets                = local.secrets
    portMappings           = each.value.port == null ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
    healthCheck = {
      command     = each.value.port == null ? concat(["CMD"], each.value.command, ["--check"]) : ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=3)"]
      interval    = 15
      timeout     = 10
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.main[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
    }, {
    # The ADOT collector with its default ECS configuration: OTLP in on 4317 and
    # 4318, traces out to X-Ray (as the task role). Not essential: losing traces
    # must not stop the role.
    name                   = "otel-collector"
    image                  = var.otel_collector_image
    command                = ["--config=/etc/ecs/ecs-default-config.yaml"]
    essential              = false
    readonlyRootFilesystem = true
    memoryReservation      = 64
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.main[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = "otel-collector"
      }
    }
  }])
}

resource "aws_iam_role_policy" "task_traces" {
  name = "traces"
  role = aws_iam_role.task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # X-Ray's PutTraceSegments and PutTelemetryRecords take no resource ARN.
      Sid      = "XRay"
      Effect   = "Allow"
      Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      Resource = "*"
    }]
  })
}

resource "aws_ecs_service" "role" {
  for_each               = var.services
  name                   = each.key
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.role[each.key].arn
  desired_count          = each.value.min
  launch_type            = "FARGATE"
  enable_execute_command = false
  propagate_tags         = "SERVICE"
  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  dynamic "load_balancer" {
    for_each = each.value.port == null ? [] : [each.key]
    content {
      target_group_arn = aws_lb_target_group.api[each.key].arn
      container_name   = each.key
      container_port   = each.value.port
    }
  }
  lifecycle {
    ignore_changes = [desired_count] # auto-scaling owns it
  }
}
