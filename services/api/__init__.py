"""The HTTP API (litestar)."""
