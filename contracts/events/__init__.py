"""Event types, one module per context. Importing this package registers every context's events in
``contracts.registry.REGISTRY``, so that a process that reads the store can decode all of them."""

from __future__ import annotations

from contracts.events import canvas, graph, runs, tenancy

__all__ = ["canvas", "graph", "runs", "tenancy"]
