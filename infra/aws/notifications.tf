# Notifications (docs/adr/0017-notifications.md): SES sends the mail and reports
# bounces and complaints to an SNS topic that posts them to the shop; SNS sends SMS
# and mobile push; one SQS queue per channel holds the deliveries waiting to go (so a
# failing channel never holds back the others); DynamoDB holds the in-app inbox.
# Postgres stays the record of every delivery's state.

variable "ses_domain" {
  description = "The domain SES sends from (its DKIM records go in the domain's DNS)."
  type        = string
}

variable "ses_sender" {
  description = "The From address (SHOP_SES_SENDER), at ses_domain."
  type        = string
}

variable "apns_signing_key" {
  description = "APNs token signing key (.p8 contents); null: no iOS push."
  type        = string
  default     = null
  sensitive   = true
}

variable "apns_key_id" {
  description = "The ID of the APNs signing key."
  type        = string
  default     = null
}

variable "apple_team_id" {
  type    = string
  default = null
}

variable "apple_bundle_id" {
  type    = string
  default = null
}

variable "apns_platform" {
  description = "APNS, or APNS_SANDBOX for development builds of the app."
  type        = string
  default     = "APNS"
}

variable "fcm_service_account" {
  description = "Firebase service account JSON (FCM HTTP v1); null: no Android push."
  type        = string
  default     = null
  sensitive   = true
}

variable "vapid_private_key_arn" {
  description = "Secrets Manager secret holding SHOP_VAPID_PRIVATE_KEY; null: no Web Push."
  type        = string
  default     = null
}

variable "vapid_subject" {
  description = "SHOP_VAPID_SUBJECT, the contact push services see; default mailto: the sender."
  type        = string
  default     = null
}

variable "notify_max_receive_count" {
  description = "Receives of one delivery's message before SQS moves it to the dead-letter queue: at least SHOP_NOTIFY_MAX_ATTEMPTS (6) plus the quiet-hours re-offers (2) and a copy's skip."
  type        = number
  default     = 10
}

locals {
  delivery_channels = toset(["email", "sms", "push", "in_app"])
  ses_feedback_url  = "${trimsuffix(var.public_url, "/")}/webhooks/ses-feedback"
  platform_applications = merge(
    var.apns_signing_key == null ? {} : { apns = aws_sns_platform_application.apns[0].arn },
    var.fcm_service_account == null ? {} : { fcm = aws_sns_platform_application.fcm[0].arn },
  )
}

resource "aws_kms_key" "notifications" {
  description         = "${var.name} notifications: queues, feedback topic, inbox"
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
        # SES publishes bounces and complaints to the encrypted topic.
        Sid       = "SesFeedback"
        Effect    = "Allow"
        Principal = { Service = "ses.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
      }
    ]
  })
}

# --- SES: the identity, and where its bounces and complaints go ---------------------

resource "aws_sesv2_configuration_set" "main" {
  configuration_set_name = var.name
  delivery_options {
    tls_policy = "REQUIRE"
  }
  reputation_options {
    reputation_metrics_enabled = true
  }
  sending_options {
    sending_enabled = true
  }
}

resource "aws_sesv2_email_identity" "main" {
  email_identity         = var.ses_domain
  configuration_set_name = aws_sesv2_configuration_set.main.configuration_set_name
}

resource "aws_sesv2_configuration_set_event_destination" "feedback" {
  configuration_set_name = aws_sesv2_configuration_set.main.configuration_set_name
  event_destination_name = "bounces-and-complaints"
  event_destination {
    enabled              = true
    matching_event_types = ["BOUNCE", "COMPLAINT"]
    sns_destination {
      topic_arn = aws_sns_topic.ses_feedback.arn
    }
  }
}

resource "aws_sns_topic" "ses_feedback" {
  name              = "${var.name}-ses-feedback"
  kms_master_key_id = aws_kms_key.notifications.arn
}

resource "aws_sns_topic_policy" "ses_feedback" {
  arn = aws_sns_topic.ses_feedback.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "SesPublishes"
      Effect    = "Allow"
      Principal = { Service = "ses.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.ses_feedback.arn
      Condition = {
        StringEquals = { "AWS:SourceAccount" = data.aws_caller_identity.current.account_id }
        ArnLike      = { "AWS:SourceArn" = aws_sesv2_configuration_set.main.arn }
      }
    }]
  })
}

# The shop confirms the subscription itself (it answers SNS's SubscriptionConfirmation),
# so the write API must be up and the public URL's DNS pointing at the load balancer.
resource "aws_sns_topic_subscription" "ses_feedback" {
  topic_arn                       = aws_sns_topic.ses_feedback.arn
  protocol                        = "https"
  endpoint                        = local.ses_feedback_url
  endpoint_auto_confirms          = true
  confirmation_timeout_in_minutes = 10
  # A lost bounce costs a send to a dead address per event: retry for about an hour.
  delivery_policy = jsonencode({
    healthyRetryPolicy = {
      minDelayTarget     = 5
      maxDelayTarget     = 300
      numRetries         = 20
      numMaxDelayRetries = 10
      backoffFunction    = "exponential"
    }
  })
  depends_on = [aws_ecs_service.role]
}

# --- SNS mobile push: one platform application per platform with credentials ---------

resource "aws_sns_platform_application" "apns" {
  count                    = var.apns_signing_key == null ? 0 : 1
  name                     = "${var.name}-apns"
  platform                 = var.apns_platform
  platform_credential      = var.apns_signing_key
  platform_principal       = var.apns_key_id
  apple_platform_team_id   = var.apple_team_id
  apple_platform_bundle_id = var.apple_bundle_id
}

resource "aws_sns_platform_application" "fcm" {
  count               = var.fcm_service_account == null ? 0 : 1
  name                = "${var.name}-fcm"
  platform            = "GCM" # SNS's name for FCM
  platform_credential = var.fcm_service_account
}

# --- SQS: the deliveries waiting, one queue per channel -------------------------------

resource "aws_sqs_queue" "delivery_dead" {
  for_each                          = local.delivery_channels
  name                              = "${var.name}-notify-${each.key}-dlq"
  message_retention_seconds         = 1209600 # 14 days, SQS's most: time to look and redrive
  kms_master_key_id                 = aws_kms_key.notifications.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "delivery" {
  for_each                          = local.delivery_channels
  name                              = "${var.name}-notify-${each.key}"
  visibility_timeout_seconds        = 60 # the receive sets it too (SqsDeliveryQueue)
  receive_wait_time_seconds         = 20
  message_retention_seconds         = 1209600 # a retry waits in its message: keep it
  kms_master_key_id                 = aws_kms_key.notifications.arn
  kms_data_key_reuse_period_seconds = 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.delivery_dead[each.key].arn
    maxReceiveCount     = var.notify_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "delivery_dead" {
  for_each  = local.delivery_channels
  queue_url = aws_sqs_queue.delivery_dead[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.delivery[each.key].arn]
  })
}

# A message in a dead-letter queue is a delivery stuck unsent: look, then redrive it.
resource "aws_cloudwatch_metric_alarm" "delivery_dead" {
  for_each            = local.delivery_channels
  alarm_name          = "${var.name}-notify-${each.key}-dead-letters"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.delivery_dead[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
}

# --- DynamoDB: the in-app inbox ---------------------------------------------------------

resource "aws_dynamodb_table" "inbox" {
  name                        = "${var.name}-inbox"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  range_key                   = "key"
  deletion_protection_enabled = true
  attribute {
    name = "user_id"
    type = "S"
  }
  attribute {
    name = "key"
    type = "S"
  }
  attribute {
    name = "notification_id"
    type = "S"
  }
  # mark_read finds a notification's key by its id (infra/amazon/dynamodb_inbox.py).
  global_secondary_index {
    name            = "by_notification"
    hash_key        = "notification_id"
    range_key       = "user_id"
    projection_type = "KEYS_ONLY"
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.notifications.arn
  }
}

# --- what the tasks may do --------------------------------------------------------------

locals {
  # A device's first push makes its SNS endpoint (none without platform applications).
  endpoint_statements = [for arns in [values(local.platform_applications)] : {
    Sid      = "PushEndpoints"
    Effect   = "Allow"
    Action   = ["sns:CreatePlatformEndpoint"]
    Resource = arns
  } if length(arns) > 0]
}

resource "aws_iam_role_policy" "task_notifications" {
  name = "notifications"
  role = aws_iam_role.task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.endpoint_statements, [
      {
        Sid      = "SendMail"
        Effect   = "Allow"
        Action   = ["ses:SendEmail", "ses:SendRawEmail"]
        Resource = [aws_sesv2_email_identity.main.arn, aws_sesv2_configuration_set.main.arn]
      },
      {
        # An SMS goes to a phone number, which has no ARN; the opt-out check has none.
        Sid      = "Sms"
        Effect   = "Allow"
        Action   = ["sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"]
        Resource = "*"
      },
      {
        Sid      = "Push"
        Effect   = "Allow"
        Action   = ["sns:Publish", "sns:DeleteEndpoint"]
        Resource = "arn:aws:sns:${var.region}:${data.aws_caller_identity.current.account_id}:endpoint/*/${var.name}-*"
      },
      {
        Sid    = "DeliveryQueues"
        Effect = "Allow"
        Action = [
          "sqs:SendMessage",
          "sqs:ReceiveMessage",
          "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility",
          "sqs:GetQueueAttributes",
        ]
        Resource = [for queue in aws_sqs_queue.delivery : queue.arn]
      },
      {
        Sid    = "Inbox"
        Effect = "Allow"
        Action = [
          "dynamodb:GetItem",
          "dynamodb:PutItem",
          "dynamodb:UpdateItem",
          "dynamodb:DeleteItem",
          "dynamodb:Query",
          "dynamodb:BatchWriteItem",
        ]
        Resource = [aws_dynamodb_table.inbox.arn, "${aws_dynamodb_table.inbox.arn}/index/by_notification"]
      },
      {
        Sid      = "NotificationsKey"
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource = aws_kms_key.notifications.arn
      }
    ])
  })
}
