output "incoming_root" {
  description = "DEID_INCOMING_ROOT of the code location."
  value       = "s3://${aws_s3_bucket.pipeline["incoming"].bucket}"
}

output "data_root" {
  description = "DEID_DATA_ROOT of the code location (de-identified outputs)."
  value       = "s3://${aws_s3_bucket.pipeline["outputs"].bucket}"
}

output "private_root" {
  description = "DEID_PRIVATE_ROOT of the code location (tables, mapping files, audit)."
  value       = "s3://${aws_s3_bucket.pipeline["work"].bucket}"
}

output "work_bucket" {
  description = "DEID_WORK_BUCKET: where the instance keeps step logs (compute-logs/)."
  value       = aws_s3_bucket.pipeline["work"].bucket
}

output "pipeline_role_arn" {
  description = "The role of the Dagster pods (serviceAccount annotation in infra/helm/values.yaml)."
  value       = aws_iam_role.pipeline.arn
}

output "kms_key_arn" {
  description = "The key encrypting the three buckets."
  value       = aws_kms_key.pipeline.arn
}
