"""Repeated selections on a 9k-node real graph (GitLab's) stay within 20 ms each once the graph is indexed."""

from __future__ import annotations

import time

import pytest

from services.planning.selection.engine import Selector
from tests.perf import PERF_SLACK
from tests.unit.ingestion.test_diff_corpus import load

BUDGET_MS = 20.0 * PERF_SLACK
EXPRESSIONS = (
    "mart_crm_person",
    "+mart_crm_person",
    "mart_crm_person+",
    "2+mart_crm_person+2",
    "@mart_crm_person",
    "tag:tdf",
    "tag:tdf+",
    "path:models/marts",
    "config.materialized:table",
    "resource_type:model,tag:sources",
    "marts.*",
    "*crm*",
    "source:*",
    "package:gitlab_snowflake",
    "test_type:generic",
    "file:*.sql",
    None,
)


def _best_ms(run: object, repeat: int = 15) -> float:
    """The best of ``repeat`` runs, in this process's CPU time: on a machine other work shares (CI runs beside
    benchmarks and dbt builds), wall time measures the neighbours; CPU time measures the code."""
    assert callable(run)
    timings = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        timings.append((time.process_time() - started) * 1000)
    return min(timings)


def test_selections_on_gitlab_take_at_most_20_ms() -> None:
    graph = load("gitlab_snowflake", "manifest.json")
    started = time.perf_counter()
    engine = Selector(graph)
    index_ms = (time.perf_counter() - started) * 1000
    assert len(graph.nodes) > 9000
    figures = {str(e): _best_ms(lambda e=e: engine.select(e)) for e in EXPRESSIONS}
    edited = Selector(load("gitlab_snowflake", "state_modified", "manifest.edited.json.gz"), state=graph)
    edited.select("state:modified")  # the one diff, cached for the engine's life
    figures["state:modified+"] = _best_ms(lambda: edited.select("state:modified+"))
    slow = {e: f"{ms:.1f} ms" for e, ms in figures.items() if ms > BUDGET_MS}
    print(f"index {index_ms:.0f} ms; " + ", ".join(f"{e}: {ms:.2f} ms" for e, ms in figures.items()))  # noqa: T201
    assert not slow, slow
    assert index_ms < 2000


@pytest.mark.parametrize("expression", ["tag:tdf+", "config.materialized:table"])
def test_results_do_not_depend_on_warm_caches(expression: str) -> None:
    graph = load("gitlab_snowflake", "manifest.json")
    engine = Selector(graph)
    assert engine.select(expression) == engine.select(expression) == Selector(graph).select(expression)
