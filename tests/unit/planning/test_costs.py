"""Cost estimates: history statistics, the per-adapter cost models, never-seen nodes, wall-clock estimates, and
the Tuva project's real run_results."""

from __future__ import annotations

import pytest

from contracts.graph import CatalogEntry, NodeResult
from contracts.plan import PlanningSettings
from services.ingestion.artifacts import read_manifest, read_run_results
from services.planning.costs import estimate_costs, estimate_node, plan_duration, successful_samples
from tests.corpus import corpus_bytes
from tests.unit.planning.test_policies import node, ran


def test_an_estimate_is_the_median_of_the_last_successful_runs_with_their_median_absolute_deviation() -> None:
    records = [ran(seconds=s, at=f"2024-03-0{d}T00:00:00Z") for d, s in ((1, 10), (2, 12), (3, 11), (4, 30), (5, 13))]
    records.append(ran("error", seconds=999, at="2024-03-06T00:00:00Z"))
    estimate = estimate_node(node("model.p.m"), records, None, PlanningSettings())
    assert (estimate.seconds, estimate.seconds_spread, estimate.confidence) == (12.0, 1.0, "high")
    assert estimate.evidence["source"] == "history"
    assert estimate.evidence["samples"] == 5
    assert estimate.evidence["last_completed_at"] == "2024-03-05T00:00:00Z"
    assert (estimate.cost, estimate.currency) == (None, None)
    assert estimate.evidence["cost_model"] == "unpriced"


def test_only_the_last_n_successful_runs_count_latest_by_completion_time_whatever_the_given_order() -> None:
    records = [ran(seconds=float(d), at=f"2024-03-{d:02d}T00:00:00Z") for d in range(20, 0, -1)]
    samples = successful_samples(records, 3)
    assert [r.execution_time for r in samples] == [18.0, 19.0, 20.0]
    estimate = estimate_node(node("model.p.m"), records, None, PlanningSettings(history_samples=3))
    assert (estimate.seconds, estimate.evidence["samples"], estimate.confidence) == (19.0, 3, "medium")


def test_one_sample_gives_low_confidence_and_no_spread() -> None:
    estimate = estimate_node(node("model.p.m"), [ran(seconds=7)], None, PlanningSettings())
    assert (estimate.seconds, estimate.seconds_spread, estimate.confidence) == (7.0, 0.0, "low")


@pytest.mark.parametrize(
    ("settings", "config", "expected"),
    [
        (
            PlanningSettings(adapter_type="snowflake", warehouse_size="Medium", credit_price=3.0, currency="USD"),
            {},
            (3.0, "USD", 4),
        ),
        (PlanningSettings(adapter_type="snowflake", warehouse_size="XSMALL"), {}, (0.25, "credits", 1)),
        (
            PlanningSettings(
                adapter_type="snowflake", warehouse_size="Small", warehouse_sizes={"TRANSFORM_L": "Large"}
            ),
            {"snowflake_warehouse": "TRANSFORM_L"},
            (2.0, "credits", 8),
        ),
        (PlanningSettings(adapter_type="snowflake"), {}, (None, None, None)),
        (PlanningSettings(adapter_type="duckdb", rate_per_second=0.001, currency="EUR"), {}, (0.9, "EUR", None)),
        (PlanningSettings(adapter_type="postgres"), {}, (None, None, None)),
    ],
    ids=[
        "snowflake_priced",
        "snowflake_in_credits",
        "snowflake_named_warehouse",
        "snowflake_no_size",
        "duckdb_rate",
        "postgres_unpriced",
    ],
)
def test_the_cost_model_follows_the_adapter_and_cites_its_inputs(
    settings: PlanningSettings, config: dict[str, str], expected: tuple[float | None, str | None, int | None]
) -> None:
    estimate = estimate_node(node("model.p.m", config=config), [ran(seconds=900)], None, settings)
    cost, currency, credits_per_hour = expected
    assert (estimate.cost, estimate.currency) == (cost, currency)
    assert estimate.evidence.get("credits_per_hour") == credits_per_hour
    if cost is None:
        assert estimate.evidence["cost_model"] == "unpriced"
        assert estimate.evidence["why"]


def test_a_never_seen_node_gets_the_default_of_its_materialization_with_low_confidence() -> None:
    view = estimate_node(node("model.p.v", materialized="view"), [], None, PlanningSettings())
    assert (view.seconds, view.confidence) == (2.0, "low")
    assert view.evidence == {
        "source": "default",
        "materialization": "view",
        "default_seconds": 2.0,
        "default_from": "lockgate",
        "cost_model": "unpriced",
        "why": "no rate_per_second configured for the environment",
    }
    custom = estimate_node(node("model.p.t"), [ran("error")], None, PlanningSettings(default_seconds={"table": 90.0}))
    assert (custom.seconds, custom.evidence["default_from"], custom.evidence["unsuccessful_runs"]) == (
        90.0,
        "settings.default_seconds",
        1,
    )


def test_a_never_seen_table_with_catalog_stats_is_estimated_from_its_size() -> None:
    entry = CatalogEntry(unique_id="model.p.t", stats={"bytes": {"id": "bytes", "value": 12_000_000_000}})
    estimate = estimate_node(node("model.p.t"), [], entry, PlanningSettings())
    assert (estimate.seconds, estimate.confidence) == (120.0, "low")
    assert estimate.evidence["source"] == "catalog"
    assert estimate.evidence["bytes"] == 12_000_000_000
    assert estimate.evidence["bytes_per_second"] == 100_000_000.0
    small = CatalogEntry(unique_id="model.p.t", stats={"row_count": {"value": 10}})
    assert estimate_node(node("model.p.t"), [], small, PlanningSettings()).evidence["source"] == "default"


def test_the_wall_clock_estimate_runs_levels_in_sequence_each_spread_over_the_threads() -> None:
    seconds = {"a": 10.0, "b": 10.0, "c": 10.0, "d": 5.0}
    assert plan_duration([["a", "b", "c"], ["d"]], seconds, threads=1) == 35.0
    assert plan_duration([["a", "b", "c"], ["d"]], seconds, threads=2) == 25.0
    assert plan_duration([["a", "b", "c"], ["d"]], seconds, threads=8) == 15.0


def test_tuva_run_results_feed_estimates_with_their_evidence() -> None:
    graph = read_manifest(corpus_bytes("tuva", "build", "manifest.json")).graph
    results = read_run_results(corpus_bytes("tuva", "build", "run_results.json")).results
    history: dict[str, list[NodeResult]] = {}
    for result in results:
        history.setdefault(result.unique_id, []).append(result)
    ids = sorted(uid for uid in history if uid in graph.nodes)
    settings = PlanningSettings(adapter_type="duckdb")
    estimates = estimate_costs(graph, ids, history, settings)
    by_source: dict[str, int] = {}
    for uid, estimate in estimates.items():
        by_source[estimate.evidence["source"]] = by_source.get(estimate.evidence["source"], 0) + 1
        assert estimate.evidence["cost_model"] == "unpriced"
        (record,) = history[uid]
        if record.status in ("success", "pass"):
            assert estimate.seconds == round(record.execution_time, 3)
            assert (estimate.confidence, estimate.evidence["samples"]) == ("low", 1)
            assert estimate.evidence["last_completed_at"] == record.completed_at
        else:  # skipped, warn, fail: no measurement, so a cited default
            assert estimate.evidence["source"] == "default"
            assert estimate.evidence["unsuccessful_runs"] == 1
    assert by_source["history"] >= 1500
    assert by_source["default"] >= 200
