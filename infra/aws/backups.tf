# Backups beyond the region: RDS's automated backups (daily snapshots and the
# transaction logs, so point-in-time restore) replicated to a second region,
# encrypted there under a key of that region. RPO and RTO: docs/adr/0018.

variable "dr_region" {
  type        = string
  default     = "eu-central-1"
  description = "Where the database's backups are replicated (another region than var.region)"
}

provider "aws" {
  alias  = "dr"
  region = var.dr_region
  default_tags {
    tags = {
      Project     = "eventshop"
      Environment = var.environment
    }
  }
}

resource "aws_kms_key" "dr_backups" {
  provider            = aws.dr
  description         = "${var.name} database backups replicated from ${var.region}"
  enable_key_rotation = true
  policy              = local.account_key_policy
}

resource "aws_db_instance_automated_backups_replication" "postgres" {
  provider               = aws.dr
  source_db_instance_arn = aws_db_instance.postgres.arn
  kms_key_id             = aws_kms_key.dr_backups.arn
  retention_period       = aws_db_instance.postgres.backup_retention_period
}
