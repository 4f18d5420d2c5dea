"""A Finance build that adds a tool, for the MCP test of a deploy."""
