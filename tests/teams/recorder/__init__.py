"""A test-only team whose only tools come from an MCP server (tests/mcp_recorder.py)."""
