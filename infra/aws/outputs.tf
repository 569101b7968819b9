output "url" {
  description = "The load balancer's DNS name (CloudFront's origin; only CloudFront reaches it)."
  value       = aws_lb.main.dns_name
}

output "cdn_domain" {
  description = "CloudFront's domain name: point the public URL's record at it."
  value       = aws_cloudfront_distribution.main.domain_name
}

output "kafka_bootstrap" {
  value = aws_msk_cluster.main.bootstrap_brokers_tls
}

output "database_address" {
  value = aws_db_instance.postgres.address
}
