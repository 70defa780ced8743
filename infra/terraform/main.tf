# The S3 buckets and the IAM role of the de-identification pipeline:
# - incoming: what sites drop (incoming/<day>/...); the pipeline only reads it.
# - outputs:  de-identified data (DEID_DATA_ROOT), shareable once validated.
# - work:     what re-identifies (tables/, work/ with the mapping files, compute-logs/): private.
# Every bucket: no public access, no ACLs, TLS only, KMS encryption, versioning, lifecycle.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}

locals {
  buckets = {
    incoming = "${var.name_prefix}-incoming"
    outputs  = "${var.name_prefix}-outputs"
    work     = "${var.name_prefix}-work"
  }
}

resource "aws_kms_key" "pipeline" {
  description         = "Encrypts the ${var.name_prefix} de-identification buckets"
  enable_key_rotation = true
}

resource "aws_kms_alias" "pipeline" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.pipeline.key_id
}

resource "aws_s3_bucket" "pipeline" {
  for_each = local.buckets
  bucket   = each.value
}

resource "aws_s3_bucket_ownership_controls" "pipeline" {
  for_each = aws_s3_bucket.pipeline
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "pipeline" {
  for_each                = aws_s3_bucket.pipeline
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "pipeline" {
  for_each = aws_s3_bucket.pipeline
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.pipeline.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "pipeline" {
  for_each = aws_s3_bucket.pipeline
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.pipeline
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = aws_s3_bucket.pipeline
  bucket   = each.value.id
  policy   = data.aws_iam_policy_document.tls_only[each.key].json
  # The public access block must exist first, or S3 may refuse the policy.
  depends_on = [aws_s3_bucket_public_access_block.pipeline]
}

# Lifecycle: drops expire once processed and kept long enough to re-run; outputs and the work
# area are kept, only their overwritten versions expire; the mapping files never expire.
resource "aws_s3_bucket_lifecycle_configuration" "incoming" {
  bucket     = aws_s3_bucket.pipeline["incoming"].id
  depends_on = [aws_s3_bucket_versioning.pipeline]
  rule {
    id     = "expire-drops"
    status = "Enabled"
    filter {
      prefix = "incoming/"
    }
    expiration {
      days = var.incoming_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "outputs" {
  bucket     = aws_s3_bucket.pipeline["outputs"].id
  depends_on = [aws_s3_bucket_versioning.pipeline]
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "work" {
  bucket     = aws_s3_bucket.pipeline["work"].id
  depends_on = [aws_s3_bucket_versioning.pipeline]
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  rule {
    id     = "expire-step-logs"
    status = "Enabled"
    filter {
      prefix = "compute-logs/"
    }
    expiration {
      days = var.compute_log_days
    }
  }
}

# The role every Dagster pod (or ECS task) of the pipeline runs as.
data "aws_iam_policy_document" "assume_pipeline_role" {
  dynamic "statement" {
    for_each = var.eks_oidc_issuer == "" ? [] : [var.eks_oidc_issuer]
    content {
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${statement.value}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value}:sub"
        values   = ["system:serviceaccount:${var.k8s_namespace}:${var.k8s_service_account}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
  dynamic "statement" {
    for_each = var.allow_ecs_tasks ? ["ecs-tasks.amazonaws.com"] : []
    content {
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = [statement.value]
      }
    }
  }
}

resource "aws_iam_role" "pipeline" {
  name               = "${var.name_prefix}-pipeline"
  assume_role_policy = data.aws_iam_policy_document.assume_pipeline_role.json
}

# Least privilege: read the drops (never change them), write the outputs and the work area
# (publishing replaces a partition's objects, so delete too), use the buckets' key.
data "aws_iam_policy_document" "pipeline" {
  statement {
    sid       = "ListDrops"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.pipeline["incoming"].arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["incoming/", "incoming/*"]
    }
  }
  statement {
    sid       = "ReadDrops"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.pipeline["incoming"].arn}/incoming/*"]
  }
  statement {
    sid       = "ListOutputsAndWork"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.pipeline["outputs"].arn, aws_s3_bucket.pipeline["work"].arn]
  }
  statement {
    sid     = "WriteOutputsAndWork"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [
      "${aws_s3_bucket.pipeline["outputs"].arn}/*",
      "${aws_s3_bucket.pipeline["work"].arn}/*",
    ]
  }
  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.pipeline.arn]
  }
}

resource "aws_iam_policy" "pipeline" {
  name   = "${var.name_prefix}-pipeline"
  policy = data.aws_iam_policy_document.pipeline.json
}

resource "aws_iam_role_policy_attachment" "pipeline" {
  role       = aws_iam_role.pipeline.name
  policy_arn = aws_iam_policy.pipeline.arn
}
