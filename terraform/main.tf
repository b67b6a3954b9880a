# A Livefarm farm on AWS: a VPC, an EKS cluster with a CPU node pool and an autoscaling NVIDIA
# GPU node pool, ElastiCache Redis for the job bus, and an S3 bucket for segments that the
# release's service account reaches through IRSA. `outputs.helm_values` is the matching
# helm/livefarm values file.

module "network" {
  source   = "./modules/network"
  name     = var.name
  vpc_cidr = var.vpc_cidr
}

module "cluster" {
  source             = "./modules/cluster"
  name               = var.name
  kubernetes_version = var.kubernetes_version
  private_subnet_ids = module.network.private_subnet_ids
  public_subnet_ids  = module.network.public_subnet_ids
  cpu_instance_type  = var.cpu_instance_type
  cpu_nodes          = var.cpu_nodes
  gpu_instance_type  = var.gpu_instance_type
  gpu_nodes          = var.gpu_nodes
}

module "redis" {
  source                   = "./modules/redis"
  name                     = var.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.private_subnet_ids
  node_type                = var.redis_node_type
  client_security_group_id = module.cluster.node_security_group_id
}

module "bucket" {
  source                      = "./modules/bucket"
  name                        = var.name
  live_segment_retention_days = var.live_segment_retention_days
  oidc_provider_arn           = module.cluster.oidc_provider_arn
  oidc_issuer                 = module.cluster.oidc_issuer
  service_account             = "system:serviceaccount:${var.kubernetes_namespace}:${local.service_account}"
}

locals {
  service_account = length(regexall("livefarm", var.helm_release)) > 0 ? var.helm_release : "${var.helm_release}-livefarm"
}
