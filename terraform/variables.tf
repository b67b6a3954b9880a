variable "name" {
  description = "Name of the farm: prefix of the cluster, node groups, Redis and bucket."
  type        = string
  default     = "livefarm"
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { "app.kubernetes.io/part-of" = "livefarm" }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "vpc_cidr" {
  description = "CIDR of the farm's VPC (split over three availability zones)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "cpu_instance_type" {
  description = "Instances of the CPU pool (ingest, segmenter, api, Redis clients, CPU transcoders)."
  type        = string
  default     = "c6i.2xlarge"
}

variable "cpu_nodes" {
  description = "Size of the CPU pool."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 2, desired = 3, max = 10 }
}

variable "gpu_instance_type" {
  description = "Instances of the GPU pool (NVENC transcoders); g4dn/g5/g6 carry NVIDIA GPUs."
  type        = string
  default     = "g6.xlarge"
}

variable "gpu_nodes" {
  description = "Size of the GPU pool; min 0 lets the cluster autoscaler empty it when idle."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 0, desired = 1, max = 20 }
}

variable "redis_node_type" {
  description = "ElastiCache node type of the job bus."
  type        = string
  default     = "cache.r7g.large"
}

variable "live_segment_retention_days" {
  description = "Days live segments (live/) are kept in the bucket; recordings (recordings/) are kept."
  type        = number
  default     = 2
}

variable "kubernetes_namespace" {
  description = "Namespace the Helm release runs in (the bucket role trusts its service account)."
  type        = string
  default     = "video"
}

variable "helm_release" {
  description = "Name of the Helm release (its service account is <release>-livefarm, or <release> if it contains livefarm)."
  type        = string
  default     = "farm"
}
