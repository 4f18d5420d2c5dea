terraform {
  required_version = ">= 1.5"

  required_providers {
    # namespace_scoped_access on service accounts needs 1.2 or later.
    temporalcloud = {
      source  = "temporalio/temporalcloud"
      version = "~> 1.2"
    }
  }
}

# Credentials: TEMPORAL_CLOUD_API_KEY in the environment (an account admin's
# or a service account's key), never in a file here.
provider "temporalcloud" {
  # Refuse to touch any other account than the one the mesh lives in.
  allowed_account_id = var.account_id
}
