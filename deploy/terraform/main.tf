# The mesh's account-level resources on Temporal Cloud: one namespace per
# component, one Nexus endpoint per team, and one namespace-scoped service
# account and API key per running component. `python -m workers.setup` creates
# the first two on self-hosted clusters only.

locals {
  # Component name => namespace name, the orchestrator's first.
  namespaces = merge(
    { orchestrator = var.mesh.orchestrator.namespace },
    { for team, config in var.mesh.teams : team => config.namespace },
  )

  # Who connects to which namespace with a key of its own: every worker, and
  # the HTTP API, which talks to the orchestrator's namespace.
  clients = merge(
    { for component in keys(local.namespaces) : component => component },
    { api = "orchestrator" },
  )
}

resource "temporalcloud_namespace" "mesh" {
  for_each = local.namespaces

  name           = each.value
  regions        = var.regions
  api_key_auth   = var.api_key_auth
  retention_days = var.retention_days

  namespace_lifecycle = {
    enable_delete_protection = var.delete_protection
  }
}

# Each team's endpoint routes to its namespace and task queue, and only the
# orchestrator's namespace may call it. Temporal Cloud enforces this
# allow-list; the team's door checks the caller again (README, "The team's door").
resource "temporalcloud_nexus_endpoint" "team" {
  for_each = var.mesh.teams

  name = each.value.endpoint
  # The team's catalog as Markdown, if it was written out (deploy/README.md);
  # else one line.
  description = fileexists("${path.module}/descriptions/${each.value.endpoint}.md") ? file("${path.module}/descriptions/${each.value.endpoint}.md") : "Team ${each.key}'s tools (the ${each.key} namespace, task queue ${each.value.task_queue})."

  worker_target = {
    namespace_id = temporalcloud_namespace.mesh[each.key].id
    task_queue   = each.value.task_queue
  }

  allowed_caller_namespaces = [temporalcloud_namespace.mesh["orchestrator"].id]
}

# A service account per client, scoped to the one namespace it uses: a leaked
# key of one team's worker reaches no other team's namespace.
resource "temporalcloud_service_account" "client" {
  for_each = local.clients

  name        = "nexus-tool-mesh-${each.key}"
  description = "The mesh's ${each.key} (namespace ${local.namespaces[each.value]})."

  namespace_scoped_access = {
    namespace_id = temporalcloud_namespace.mesh[each.value].id
    permission   = "write"
  }
}

# The keys end up in Terraform's state: keep the state in an encrypted,
# access-controlled backend, and copy each key into its component's Secret.
resource "temporalcloud_apikey" "client" {
  for_each = local.clients

  display_name = "nexus-tool-mesh-${each.key}"
  owner_type   = "service-account"
  owner_id     = temporalcloud_service_account.client[each.key].id
  expiry_time  = var.api_key_expiry
  disabled     = false
}
