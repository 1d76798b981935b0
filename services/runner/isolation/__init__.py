"""Adapters of the ``WorkerRuntime`` port: ``local`` (cgroups v1/v2 + bubblewrap) and ``docker`` (Docker Engine API)."""
