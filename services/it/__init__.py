"""The IT team's tools: Jira project metrics and this host's network addresses."""
