variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "environment" {
  type    = string
  default = "production"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "eventshop"
}

variable "vpc_cidr" {
  type    = string
  default = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Three zones: MSK and the data stores spread over them."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "image" {
  description = "The eventshop container image (the repository's Dockerfile), by digest."
  type        = string
}

variable "otel_collector_image" {
  description = "The AWS Distro for OpenTelemetry collector, the tasks' trace sidecar."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "secret_key_arn" {
  description = "Secrets Manager secret holding SHOP_SECRET_KEY (48+ random characters)."
  type        = string
}

variable "encryption_key_arn" {
  description = "Secrets Manager secret holding SHOP_ENCRYPTION_KEY (32 random bytes, base64): event state is encrypted at rest."
  type        = string
}

variable "stripe_api_key_arn" {
  description = "Secrets Manager secret holding SHOP_STRIPE_API_KEY (sk_live_...)."
  type        = string
}

variable "stripe_webhook_secret_arn" {
  description = "Secrets Manager secret holding SHOP_STRIPE_WEBHOOK_SECRET (whsec_...); null: no POST /webhooks/stripe."
  type        = string
  default     = null
}

variable "metrics_token_arn" {
  description = "Secrets Manager secret holding SHOP_METRICS_TOKEN, the bearer token Prometheus scrapes /metrics with; null: /metrics is not served."
  type        = string
  default     = null
}

variable "secrets_kms_key_arn" {
  description = "The customer-managed KMS key the secrets above are encrypted with; null: Secrets Manager's own key (aws/secretsmanager), which needs no grant."
  type        = string
  default     = null
}

variable "public_url" {
  description = "The URL shoppers reach the API at (links in mail)."
  type        = string
}

variable "db_instance_class" {
  type    = string
  default = "db.r6g.large"
}

variable "kafka_instance_type" {
  type    = string
  default = "kafka.m7g.large"
}

variable "opensearch_instance_type" {
  type    = string
  default = "r6g.large.search"
}

variable "redis_node_type" {
  type    = string
  default = "cache.r7g.large"
}

variable "services" {
  description = "Per role: size and scaling bounds. APIs scale on CPU, workers on consumer lag."
  type = map(object({
    cpu     = number
    memory  = number
    min     = number
    max     = number
    command = list(string)
    port    = optional(number)
  }))
  default = {
    write-api = { cpu = 1024, memory = 2048, min = 2, max = 10, command = ["shop", "serve", "write-api", "--host", "0.0.0.0", "--port", "8000"], port = 8000 }
    read-api  = { cpu = 1024, memory = 2048, min = 2, max = 20, command = ["shop", "serve", "read-api", "--host", "0.0.0.0", "--port", "8000"], port = 8000 }
    relay     = { cpu = 512, memory = 1024, min = 2, max = 2, command = ["shop", "serve", "relay"] }
    worker    = { cpu = 1024, memory = 2048, min = 2, max = 12, command = ["shop", "serve", "worker"] }
  }
}

variable "api_cpu_target" {
  description = "Average CPU (percent) the API services are scaled to hold."
  type        = number
  default     = 60
}

variable "worker_lag_target" {
  description = "Messages of consumer lag (sum over partitions) per worker task the workers are scaled to hold."
  type        = number
  default     = 5000
}

variable "consumer_group" {
  description = "The workers' Kafka consumer group (SHOP_WORKER_GROUP)."
  type        = string
  default     = "eventshop-workers"
}

variable "log_retention_days" {
  type    = number
  default = 365
}
