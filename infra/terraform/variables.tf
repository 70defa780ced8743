variable "region" {
  description = "AWS region of the buckets."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every bucket and IAM name, e.g. the site: acme-deid."
  type        = string
}

variable "eks_oidc_issuer" {
  description = "OIDC issuer of the EKS cluster without https:// (pods assume the pipeline role through IRSA); empty when not on EKS."
  type        = string
  default     = ""
}

variable "k8s_namespace" {
  description = "Namespace of the Helm release."
  type        = string
  default     = "deid"
}

variable "k8s_service_account" {
  description = "Service account of the Dagster pods (serviceAccount.name in infra/helm/values.yaml)."
  type        = string
  default     = "deid-pipeline"
}

variable "allow_ecs_tasks" {
  description = "Let ECS tasks assume the pipeline role (a deployment on ECS instead of EKS)."
  type        = bool
  default     = false
}

variable "incoming_retention_days" {
  description = "Days a site's drop stays in the incoming bucket; the manifest keeps what it held."
  type        = number
  default     = 90
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept, to undo a bad re-run."
  type        = number
  default     = 30
}

variable "compute_log_days" {
  description = "Days the step logs (compute-logs/ in the work bucket) are kept."
  type        = number
  default     = 90
}
