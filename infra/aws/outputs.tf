output "url" {
  description = "The load balancer's DNS name (point the public URL's record at it)."
  value       = aws_lb.main.dns_name
}

output "kafka_bootstrap" {
  value = aws_msk_cluster.main.bootstrap_brokers_tls
}

output "database_address" {
  value = aws_db_instance.postgres.address
}
