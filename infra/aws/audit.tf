# Tamper evidence (docs/adr/0023-audit-chain.md): the audit chain's signed heads are
# versions of one object in a bucket with Object Lock in compliance mode, so that no
# one, the root account included, can delete or overwrite a head before its
# retention ends; the tasks may add versions and read them, nothing else.

variable "audit_signing_key_arn" {
  description = "Secrets Manager secret holding SHOP_AUDIT_SIGNING_KEY (`shop audit new-key`)."
  type        = string
}

variable "audit_retention_days" {
  description = "How long each signed head stays locked (compliance mode: not shortened, not lifted)."
  type        = number
  default     = 2555
}

resource "aws_kms_key" "audit" {
  description         = "${var.name} audit chain heads"
  enable_key_rotation = true
  policy              = local.account_key_policy
}

resource "aws_s3_bucket" "audit_heads" {
  bucket_prefix       = "${var.name}-audit-heads-"
  object_lock_enabled = true
}

resource "aws_s3_bucket_versioning" "audit_heads" {
  bucket = aws_s3_bucket.audit_heads.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "audit_heads" {
  bucket = aws_s3_bucket.audit_heads.id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.audit_retention_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.audit_heads]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "audit_heads" {
  bucket = aws_s3_bucket.audit_heads.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.audit.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "audit_heads" {
  bucket                  = aws_s3_bucket.audit_heads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "audit_heads" {
  bucket = aws_s3_bucket.audit_heads.id
  rule {
    id     = "after-retention"
    status = "Enabled"
    filter {}
    # Old heads go once their lock has ended (S3 refuses to before).
    noncurrent_version_expiration {
      noncurrent_days = var.audit_retention_days + 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_iam_role_policy" "task_audit_heads" {
  name = "audit-heads"
  role = aws_iam_role.task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Heads"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectVersion"]
        Resource = "${aws_s3_bucket.audit_heads.arn}/*"
      },
      {
        Sid      = "LockCheck"
        Effect   = "Allow"
        Action   = ["s3:GetBucketObjectLockConfiguration"]
        Resource = aws_s3_bucket.audit_heads.arn
      },
      {
        Sid      = "HeadsKey"
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource = aws_kms_key.audit.arn
      },
    ]
  })
}
