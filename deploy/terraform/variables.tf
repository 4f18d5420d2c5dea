variable "account_id" {
  description = "Temporal Cloud account id: the suffix of every namespace id (<name>.<account_id>)."
  type        = string
}

variable "regions" {
  description = "Region of the mesh's namespaces; two regions make each namespace highly available."
  type        = list(string)
  default     = ["aws-us-east-1"]
}

variable "retention_days" {
  description = "Days a closed workflow's history is kept; `python -m workers.setup` uses 3 on self-hosted clusters."
  type        = number
  default     = 3
}

variable "api_key_auth" {
  description = "Whether the namespaces accept API keys, the way the mesh's workers authenticate (TEMPORAL_API_KEY)."
  type        = bool
  default     = true
}

variable "api_key_expiry" {
  description = "When the components' API keys expire, RFC 3339 (e.g. 2027-06-30T00:00:00Z). Rotate before then."
  type        = string

  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$", var.api_key_expiry))
    error_message = "api_key_expiry must look like 2027-06-30T00:00:00Z."
  }
}

variable "delete_protection" {
  description = "Whether Temporal Cloud refuses to delete the namespaces until this is switched off."
  type        = bool
  default     = true
}

# The mesh file's names, in mesh.auto.tfvars.json (Terraform reads no TOML).
# tests/test_deploy_files.py checks that they match mesh.toml.
variable "mesh" {
  description = "The orchestrator's and each team's namespace (its name, without the account suffix), task queue and Nexus endpoint."
  type = object({
    orchestrator = object({
      namespace  = string
      task_queue = string
    })
    teams = map(object({
      namespace  = string
      task_queue = string
      endpoint   = string
    }))
  })
}
