output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name <this>)."
  value       = module.cluster.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.cluster.endpoint
}

output "redis_url" {
  description = "The job bus (in-VPC, reachable from the nodes only)."
  value       = module.redis.url
}

output "bucket" {
  description = "Segment bucket."
  value       = module.bucket.bucket
}

output "segments_role_arn" {
  description = "IAM role of the release's service account (IRSA) with access to the bucket."
  value       = module.bucket.role_arn
}

output "helm_values" {
  description = "Values for helm/livefarm on this infrastructure."
  value = yamlencode({
    redis = { enabled = false, url = module.redis.url }
    storage = {
      s3 = { bucket = module.bucket.bucket, prefix = "", region = var.region }
    }
    serviceAccount = {
      annotations = { "eks.amazonaws.com/role-arn" = module.bucket.role_arn }
    }
    transcoder = {
      gpu = { enabled = true }
    }
  })
}
