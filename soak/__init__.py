"""The chaos soak (``scripts/soak``): sessions under random faults, then the
invariants that say nothing was lost, duplicated or stuck. See docs/soak.md."""
