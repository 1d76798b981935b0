"""The graph layout cache: positions computed by a browser's layout engine, kept per graph version and key."""
