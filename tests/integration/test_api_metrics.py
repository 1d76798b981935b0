"""``GET /metrics``: the Prometheus exposition of the runner that lives in the API process (embedded default)."""

from __future__ import annotations

import re

from services.runner import metrics
from tests.integration.api_support import api_client


def _finished(text: str, status: str) -> float:
    found = re.search(rf'^lockgate_runs_finished_total{{reason="",status="{status}"}} ([0-9.e+]+)$', text, re.M)
    return float(found[1]) if found else 0.0


async def test_metrics_expose_the_runners_series_without_credentials(pg_url: str) -> None:
    async with api_client(pg_url) as client:
        before = await client.get("/metrics")
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain")
        for series in ("lockgate_runs_active", "lockgate_run_queue_wait_seconds", "lockgate_runs_oom_killed_total"):
            assert series in before.text
        metrics.run_finished("success", "", oom=False)
        after = await client.get("/metrics")
        assert _finished(after.text, "success") == _finished(before.text, "success") + 1
