"""The MCP gateway: the teams' tools for any MCP client, each call a durable Temporal call."""
