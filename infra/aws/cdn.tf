# CloudFront in front of the load balancer, the only way in (the ALB's security
# group takes HTTPS from CloudFront's origin-facing addresses only, network.tf).
#
# Two behaviours:
# - the catalog's public reads (GET /products, /products/{id}, /categories, /search):
#   cached for as long as the read API's Cache-Control says (read_api/http_caching.py:
#   public, max-age=5, stale-while-revalidate=30), never longer than a minute;
#   an answer without Cache-Control (an error, a review page) is not cached;
# - everything else (/users, /auth, /cart, /checkout, /orders, /payments, /me,
#   /admin, /inventory, /reviews, /webhooks, product reviews, health, ...): not
#   cached, every header, cookie and query string passed on.
#
# The catalog's paths also take writes (POST /products, PUT /products/{id}/price,
# POST /categories, ...) and a seller's or admin's reads of unpublished products,
# and a behaviour is chosen by path, never by method: so the catalog behaviour
# passes the bearer on, as part of the cache key. A request with a credential
# therefore never shares a cache entry with anyone, and its answer is marked
# no-store by the read API, so it is not even stored. Only anonymous requests share
# entries: a storefront that wants the edge's copies sends no bearer on catalog
# reads (they need none).

variable "cdn_certificate_arn" {
  description = "ACM certificate in us-east-1 (CloudFront's region) for the public URL's host name."
  type        = string
}

variable "cdn_price_class" {
  description = "CloudFront edge locations used (PriceClass_100: Europe and North America)."
  type        = string
  default     = "PriceClass_100"
}

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1" # CloudFront's WAF and its logs live there
  default_tags {
    tags = {
      Project     = "eventshop"
      Environment = var.environment
    }
  }
}

locals {
  public_host = regex("^https?://([^/:]+)", var.public_url)[0]
  # Cached, in this order, after the uncached exception first. CloudFront patterns:
  # * is any characters (slashes included), matched case-sensitively on the path.
  catalog_paths = ["/products", "/products/*", "/categories", "/search"]
  uncached_paths = [
    "/products/*/reviews*", # reviews: admins ask for hidden ones; answers carry no Cache-Control
  ]
  # Errors are never kept: a 404 of a product being published, a 503 of a view
  # catching up (CloudFront would otherwise keep an error for 10 seconds).
  uncached_errors = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504]
}

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

data "aws_cloudfront_origin_request_policy" "all_viewer" {
  name = "Managed-AllViewer"
}

data "aws_ec2_managed_prefix_list" "cloudfront" {
  name = "com.amazonaws.global.cloudfront.origin-facing"
}

resource "aws_cloudfront_cache_policy" "catalog" {
  name        = "${var.name}-catalog"
  comment     = "The catalog's public reads: the origin's Cache-Control decides, at most a minute"
  min_ttl     = 0
  default_ttl = 0 # no Cache-Control, not cached
  max_ttl     = 60
  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "whitelist"
      headers {
        # Authorization: a credential's request gets entries of its own (and its
        # answers are no-store); X-Consistency-Token: a read-your-writes request is
        # never answered with a copy made before the write; Origin: CORS answers
        # name the origin they allow.
        items = ["Authorization", "X-Consistency-Token", "Origin"]
      }
    }
    query_strings_config {
      query_string_behavior = "all" # filters, sorts, cursors, ?after=
    }
  }
}

resource "aws_cloudfront_origin_request_policy" "catalog" {
  name    = "${var.name}-catalog"
  comment = "What the catalog's writes and CORS preflights need besides the cache key"
  cookies_config {
    cookie_behavior = "none"
  }
  headers_config {
    header_behavior = "whitelist"
    headers {
      # Host: the load balancer's certificate is the public host name's.
      items = [
        "Host", "Content-Type", "Idempotency-Key", "traceparent", "tracestate",
        "Access-Control-Request-Method", "Access-Control-Request-Headers",
      ]
    }
  }
  query_strings_config {
    query_string_behavior = "all"
  }
}

resource "aws_cloudfront_response_headers_policy" "api" {
  name    = "${var.name}-api"
  comment = "The read and write APIs' own security headers, on answers CloudFront makes too"
  security_headers_config {
    content_type_options {
      override = false
    }
    referrer_policy {
      referrer_policy = "no-referrer"
      override        = false
    }
    frame_options {
      frame_option = "DENY"
      override     = false
    }
    strict_transport_security {
      # The app's own value (response_edge.py), where an answer has none.
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      override                   = false
    }
  }
}

resource "aws_cloudfront_distribution" "main" {
  enabled         = true
  comment         = var.name
  aliases         = [local.public_host]
  price_class     = var.cdn_price_class
  http_version    = "http2and3"
  is_ipv6_enabled = true
  web_acl_id      = aws_wafv2_web_acl.cdn.arn

  origin {
    origin_id   = "alb"
    domain_name = aws_lb.main.dns_name
    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_read_timeout      = 60 # the inbox's event stream pings every 15 s
      origin_keepalive_timeout = 60
    }
  }

  # Product reviews: under /products/*, but not a catalog read that is cached.
  dynamic "ordered_cache_behavior" {
    for_each = local.uncached_paths
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = "alb"
      viewer_protocol_policy     = "redirect-to-https"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
      origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer.id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.api.id
      compress                   = true
    }
  }

  dynamic "ordered_cache_behavior" {
    for_each = local.catalog_paths
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = "alb"
      viewer_protocol_policy     = "redirect-to-https"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      cache_policy_id            = aws_cloudfront_cache_policy.catalog.id
      origin_request_policy_id   = aws_cloudfront_origin_request_policy.catalog.id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.api.id
      compress                   = true
    }
  }

  # Everything else: personal answers, commands, webhooks, health, the inbox stream.
  default_cache_behavior {
    target_origin_id           = "alb"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.api.id
    compress                   = true
  }

  dynamic "custom_error_response" {
    for_each = local.uncached_errors
    content {
      error_code            = custom_error_response.value
      error_caching_min_ttl = 0
    }
  }

  viewer_certificate {
    acm_certificate_arn      = var.cdn_certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  logging_config {
    bucket          = aws_s3_bucket.cdn_logs.bucket_domain_name
    include_cookies = false
  }
}

# Standard logs: CloudFront writes them with an ACL, so the bucket takes ACLs.
resource "aws_s3_bucket" "cdn_logs" {
  bucket_prefix = "${var.name}-cdn-logs-"
}

resource "aws_s3_bucket_ownership_controls" "cdn_logs" {
  #checkov:skip=CKV2_AWS_65:CloudFront's standard logs are written with an ACL, so this bucket must take them
  bucket = aws_s3_bucket.cdn_logs.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_versioning" "cdn_logs" {
  bucket = aws_s3_bucket.cdn_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "cdn_logs" {
  bucket = aws_s3_bucket.cdn_logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = 90
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_public_access_block" "cdn_logs" {
  bucket                  = aws_s3_bucket.cdn_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# At the edge, where the viewer's own address is known: the managed rule sets and the
# per-address rate limit (the regional ACL on the ALB sees CloudFront's addresses).
resource "aws_wafv2_web_acl" "cdn" {
  provider = aws.us_east_1
  name     = "${var.name}-cdn"
  scope    = "CLOUDFRONT"
  default_action {
    allow {}
  }
  rule {
    # The OWASP top-ten style exploits.
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 0
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesCommonRuleSet"
      sampled_requests_enabled   = true
    }
  }
  rule {
    # Addresses known for bots and attacks.
    name     = "AWSManagedRulesAmazonIpReputationList"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesAmazonIpReputationList"
      sampled_requests_enabled   = true
    }
  }
  rule {
    # Known bad inputs, Log4j's JNDI lookups among them.
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 5
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "per-address-rate"
    priority = 10
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = 6000
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "per-address-rate"
      sampled_requests_enabled   = true
    }
  }
  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-cdn"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_logging_configuration" "cdn" {
  provider                = aws.us_east_1
  resource_arn            = aws_wafv2_web_acl.cdn.arn
  log_destination_configs = [aws_cloudwatch_log_group.cdn_waf.arn]
}

resource "aws_kms_key" "cdn_logs" {
  provider            = aws.us_east_1
  description         = "${var.name} CloudFront WAF logs"
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
        Principal = { Service = "logs.us-east-1.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
      }
    ]
  })
}

resource "aws_cloudwatch_log_group" "cdn_waf" {
  provider          = aws.us_east_1
  name              = "aws-waf-logs-${var.name}-cdn" # the prefix WAF requires
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.cdn_logs.arn
}
