output "namespace_ids" {
  description = "Namespace id (<name>.<account>) per component: the namespaces of the cloud overlay's mesh.toml."
  value       = { for component, namespace in temporalcloud_namespace.mesh : component => namespace.id }
}

output "grpc_addresses" {
  description = "Address per component for API-key clients: its Deployment's TEMPORAL_ADDRESS."
  value       = { for component, target in local.clients : component => temporalcloud_namespace.mesh[target].endpoints.grpc_address }
}

output "nexus_endpoint_ids" {
  description = "Nexus endpoint id per team."
  value       = { for team, endpoint in temporalcloud_nexus_endpoint.team : team => endpoint.id }
}

output "api_keys" {
  description = "API key per client (orchestrator, api, and each team): its Secret's TEMPORAL_API_KEY."
  value       = { for client, key in temporalcloud_apikey.client : client => key.token }
  sensitive   = true
}
