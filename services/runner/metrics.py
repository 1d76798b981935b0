"""The runner worker's Prometheus metrics, on a registry of their own (not the process-global default one, so
that tests and other components do not see or collide with them), and a small ``/metrics`` HTTP server.

The worker calls ``run_started`` when it begins executing a run (after its queue wait) and ``run_ended`` when it
stops (the pair keeps ``lockgate_runs_active``), ``node_finished`` for each node dbt reports, and
``run_finished`` once per final status it records. ``render`` gives the exposition
text for an existing HTTP app; ``serve_metrics`` serves it on its own port until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from contracts.events.runs import FailureReason, FinalStatus

REGISTRY: Final = CollectorRegistry()

RUNS_FINISHED: Final = Counter(
    "lockgate_runs_finished",
    "Runs this worker executed, by final status and failure reason (empty for success and warning).",
    ["status", "reason"],
    registry=REGISTRY,
)
NODE_DURATION: Final = Histogram(
    "lockgate_node_duration_seconds",
    "Execution time of dbt nodes as dbt reports it, by resource type and status.",
    ["resource_type", "status"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
QUEUE_WAIT: Final = Histogram(
    "lockgate_run_queue_wait_seconds",
    "Time from a run's approval to the start of its execution.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)
RUNS_ACTIVE: Final = Gauge("lockgate_runs_active", "Runs this worker is executing now.", registry=REGISTRY)
RUNS_OOM_KILLED: Final = Counter(
    "lockgate_runs_oom_killed", "Runs whose dbt process the memory limit killed.", registry=REGISTRY
)


def run_started(queue_wait_s: float) -> None:
    """The worker begins executing a run that waited ``queue_wait_s`` since its approval."""
    QUEUE_WAIT.observe(max(0.0, queue_wait_s))
    RUNS_ACTIVE.inc()


def run_ended() -> None:
    """The worker stopped executing a run it counted with ``run_started`` (however that ended)."""
    RUNS_ACTIVE.dec()


def run_finished(status: FinalStatus, reason: FailureReason, *, oom: bool = False) -> None:
    """The worker recorded a run's end (also for runs it never started: a workspace error before the start,
    a lost runner's run it reaped); ``oom``: the dbt process was OOM-killed."""
    RUNS_FINISHED.labels(status=status, reason=reason).inc()
    if oom:
        RUNS_OOM_KILLED.inc()


def node_finished(resource_type: str, status: str, seconds: float) -> None:
    """A node finished in dbt (``model``, ``test``, ``seed``...) with ``status`` after ``seconds``."""
    NODE_DURATION.labels(resource_type=resource_type, status=status).observe(max(0.0, seconds))


def render() -> tuple[bytes, str]:
    """The exposition text of every metric above, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class MetricsServer:
    """prometheus_client's HTTP server (a thread) for ``REGISTRY``; ``port`` is the bound one (ask for 0)."""

    def __init__(self, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=REGISTRY)
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving, close the socket and join the thread (blocks up to its 0.5 s poll interval)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


async def serve_metrics(host: str, port: int, stop: asyncio.Event) -> None:
    """Serve ``/metrics`` on ``host:port`` until ``stop`` is set (``lockgate worker runner``)."""
    server = await asyncio.to_thread(MetricsServer, host, port)
    try:
        await stop.wait()
    finally:
        await asyncio.to_thread(server.close)
