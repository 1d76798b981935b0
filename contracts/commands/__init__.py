"""Commands, one module per context. Commands are intentions; they are never stored."""
