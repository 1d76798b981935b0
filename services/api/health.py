"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import msgspec
from litestar import Response, get

from services.api.deps import RuntimeDep
from services.shared.errors import InfrastructureError


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    checks: dict[str, str] = {}


@get("/healthz", summary="The process is up", tags=["health"])
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", summary="The store (and NATS, when configured) answer", tags=["health"])
async def readyz(runtime: RuntimeDep) -> Response[Health]:
    checks: dict[str, str] = {}
    ready = True
    for name, probe in runtime.readiness_probes().items():
        try:
            await probe()
            checks[name] = "ok"
        except InfrastructureError as exc:
            checks[name] = exc.message
            ready = False
    return Response(Health(status="ok" if ready else "unavailable", checks=checks), status_code=200 if ready else 503)


@get("/metrics", summary="Prometheus metrics of the runner in this process", tags=["health"], media_type="text/plain")
async def metrics() -> Response[bytes]:
    """The runner's series (runs by final status, node durations, queue wait, active runs, OOM kills): in the
    embedded default the runner lives in this process; ``lockgate worker runner`` serves the same on its own."""
    from services.runner.metrics import render  # noqa: PLC0415 - prometheus_client only where it is served

    body, content_type = render()
    return Response(body, media_type=content_type)
