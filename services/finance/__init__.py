"""The Finance team's tools: stock prices and return-on-investment arithmetic."""
