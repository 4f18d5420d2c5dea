"""Finance build 2, for the rollout tests: a claim's result gains a field."""
