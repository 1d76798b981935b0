"""Cost estimates from run history: how long each node should take, what it should cost, and why we think so.

Pure functions, no I/O. Per node, in this order (the first that applies):

1. **history**: the last ``settings.history_samples`` (10) *successful* executions (status ``success``,
   ``pass``), latest by ``completed_at`` (records without one count as oldest, in their given order).
   ``seconds`` = their median ``execution_time``, ``seconds_spread`` = the median absolute deviation.
   Confidence: ``high`` with 5 or more samples, ``medium`` with 2 to 4, ``low`` with 1.
2. **catalog**: a never-seen table-like node whose catalog entry has stats: bytes at 100 MB/s, else rows at
   1 M rows/s (Lockgate's defaults, named in the evidence), never less than the materialization default.
   Confidence ``low``.
3. **default**: a per-materialization default (``DEFAULT_SECONDS``, overridable per environment with
   ``settings.default_seconds``). Confidence ``low``.

Cost model (``cost_of``):

- **snowflake**: credits = credits/hour of the warehouse size (X-Small 1, Small 2, Medium 4, Large 8, X-Large
  16, 2X-Large 32 ... 6X-Large 512: Snowflake's standard warehouses) x seconds / 3600; times
  ``settings.credit_price`` in ``settings.currency`` when a price is set, else reported in ``credits``. The
  size is ``settings.warehouse_sizes[config.snowflake_warehouse]`` when the model names a warehouse, else
  ``settings.warehouse_size``; without a size there is no cost. Per-query seconds ignore Snowflake's 60 s
  minimum on resume and idle time (DBT-NOTES: Select spreads idle time over the hour's queries), so the
  estimate is a lower bound of the bill.
- **every other adapter** (duckdb, postgres...): seconds x ``settings.rate_per_second`` in
  ``settings.currency`` (``unit`` if unnamed). Without a rate the cost is None and the currency None:
  unpriced, never a made-up 0.

``plan_duration`` estimates the wall-clock time of a plan: waves run one after the other, inside a wave the
topological levels of the running items one after the other, and each level's items spread over the
environment's threads longest-first. dbt starts a child as soon as its parents finish, so this level-barrier
model is pessimistic for deep uneven graphs; it ignores queueing in the warehouse, so it is optimistic there.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from contracts.graph import CatalogEntry, GraphNode, LogicalGraph
from contracts.plan import Confidence, CostEstimate, Evidence, PlanningSettings

__all__ = [
    "CATALOG_BYTES_PER_SECOND",
    "CATALOG_ROWS_PER_SECOND",
    "DEFAULT_SECONDS",
    "SNOWFLAKE_CREDITS_PER_HOUR",
    "SUCCESS_STATUSES",
    "ExecutionRecord",
    "cost_of",
    "estimate_costs",
    "estimate_node",
    "parse_timestamp",
    "plan_duration",
    "successful_samples",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SUCCESS_STATUSES: frozenset[str] = frozenset({"success", "pass"})
"""Statuses whose ``execution_time`` measures a complete execution."""

DEFAULT_SECONDS: dict[str, float] = {
    "view": 2.0,
    "ephemeral": 0.0,
    "table": 30.0,
    "incremental": 30.0,
    "materialized_view": 30.0,
    "dynamic_table": 30.0,
    "snapshot": 30.0,
    "seed": 5.0,
    "test": 2.0,
    "unit_test": 1.0,
    "function": 1.0,
    "operation": 1.0,
    "analysis": 0.0,
}
"""Lockgate's guesses for never-seen nodes, by materialization (then resource type); cited as ``default``."""
FALLBACK_SECONDS = 10.0
"""For a materialization Lockgate knows nothing about (custom materializations)."""

CATALOG_BYTES_PER_SECOND = 100_000_000.0
CATALOG_ROWS_PER_SECOND = 1_000_000.0
_TABLE_LIKE = frozenset({"table", "incremental", "snapshot", "seed", "materialized_view", "dynamic_table"})

SNOWFLAKE_CREDITS_PER_HOUR: dict[str, float] = {
    "x-small": 1,
    "small": 2,
    "medium": 4,
    "large": 8,
    "x-large": 16,
    "2x-large": 32,
    "3x-large": 64,
    "4x-large": 128,
    "5x-large": 256,
    "6x-large": 512,
}
"""Standard warehouses, credits per hour (Snowflake's published table)."""

_SIZE_ALIASES = {
    "xsmall": "x-small",
    "xlarge": "x-large",
    "xxlarge": "2x-large",
    "2xlarge": "2x-large",
    "xxxlarge": "3x-large",
    "3xlarge": "3x-large",
    "4xlarge": "4x-large",
    "5xlarge": "5x-large",
    "6xlarge": "6x-large",
}


class ExecutionRecord(Protocol):
    """What an estimate reads from one past execution (``contracts.graph.NodeResult`` has it)."""

    @property
    def status(self) -> str: ...
    @property
    def execution_time(self) -> float: ...
    @property
    def completed_at(self) -> str | None: ...


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO-8601 timestamp as dbt writes it (``...Z``); naive ones are taken as UTC; None if unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def successful_samples(records: Sequence[ExecutionRecord], limit: int) -> list[ExecutionRecord]:
    """The last ``limit`` successful executions, oldest first (by ``completed_at``; undated ones count as oldest,
    in their given order)."""
    if limit <= 0:
        return []
    ok = [
        (parse_timestamp(r.completed_at) or _EPOCH, i, r) for i, r in enumerate(records) if r.status in SUCCESS_STATUSES
    ]
    ok.sort(key=lambda entry: (entry[0], entry[1]))
    return [r for _, _, r in ok[-limit:]]


def _confidence(samples: int) -> Confidence:
    if samples >= 5:
        return "high"
    return "medium" if samples >= 2 else "low"


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def _materialization(node: GraphNode) -> str:
    if node.resource_type in ("model", "snapshot", "seed"):
        materialized = node.materialized or node.config.get("materialized")
        if isinstance(materialized, str) and materialized:
            return materialized
    return node.resource_type


def _catalog_seconds(entry: CatalogEntry) -> tuple[float, dict[str, Any]] | None:
    for key, per_second, unit in (
        ("bytes", CATALOG_BYTES_PER_SECOND, "bytes_per_second"),
        ("num_bytes", CATALOG_BYTES_PER_SECOND, "bytes_per_second"),
        ("row_count", CATALOG_ROWS_PER_SECOND, "rows_per_second"),
        ("num_rows", CATALOG_ROWS_PER_SECOND, "rows_per_second"),
    ):
        stat = entry.stats.get(key)
        value = stat.get("value") if isinstance(stat, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value) / per_second, {"stat": key, key: value, unit: per_second}
    return None


def _normalise_size(size: str) -> str | None:
    key = size.strip().lower().replace("_", "-").replace(" ", "-")
    if key in SNOWFLAKE_CREDITS_PER_HOUR:
        return key
    return _SIZE_ALIASES.get(key.replace("-", ""))


def cost_of(node: GraphNode, seconds: float, settings: PlanningSettings) -> tuple[float | None, str | None, Evidence]:
    """The price of ``seconds`` of ``node`` in the environment, its currency, and the cost model's inputs."""
    if settings.adapter_type.lower() == "snowflake":
        return _snowflake_cost(node, seconds, settings)
    if settings.rate_per_second is None:
        return None, None, {"cost_model": "unpriced", "why": "no rate_per_second configured for the environment"}
    currency = settings.currency or "unit"
    cost = seconds * settings.rate_per_second
    return _round(cost, 6), currency, {"cost_model": "rate_per_second", "rate_per_second": settings.rate_per_second}


def _snowflake_cost(
    node: GraphNode, seconds: float, settings: PlanningSettings
) -> tuple[float | None, str | None, Evidence]:
    warehouse = node.config.get("snowflake_warehouse")
    size: str | None = None
    evidence: Evidence = {"cost_model": "snowflake_credits"}
    if isinstance(warehouse, str) and warehouse in settings.warehouse_sizes:
        size = settings.warehouse_sizes[warehouse]
        evidence["warehouse"] = warehouse
        evidence["size_from"] = "settings.warehouse_sizes"
    elif settings.warehouse_size is not None:
        size = settings.warehouse_size
        evidence["size_from"] = "settings.warehouse_size"
        if isinstance(warehouse, str):
            evidence["warehouse"] = warehouse
            evidence["warehouse_size_unknown"] = True
    normalised = _normalise_size(size) if size is not None else None
    if normalised is None:
        why = f"unknown warehouse size {size!r}" if size is not None else "no warehouse size configured"
        return None, None, {"cost_model": "unpriced", "why": why}
    credits_per_hour = SNOWFLAKE_CREDITS_PER_HOUR[normalised]
    used = credits_per_hour * seconds / 3600.0
    evidence.update({"warehouse_size": normalised, "credits_per_hour": credits_per_hour, "credits": _round(used, 6)})
    if settings.credit_price is None:
        return _round(used, 6), "credits", evidence
    evidence["credit_price"] = settings.credit_price
    return _round(used * settings.credit_price, 6), settings.currency or "unit", evidence


def estimate_node(
    node: GraphNode,
    records: Sequence[ExecutionRecord],
    catalog: CatalogEntry | None,
    settings: PlanningSettings,
) -> CostEstimate:
    """One node's estimate (see the module docstring for the rules); ``evidence`` says where it came from."""
    samples = successful_samples(records, settings.history_samples)
    evidence: Evidence
    if samples:
        times = [max(0.0, float(r.execution_time)) for r in samples]
        median = statistics.median(times)
        spread = statistics.median([abs(t - median) for t in times]) if len(times) > 1 else 0.0
        confidence = _confidence(len(times))
        evidence = {
            "source": "history",
            "samples": len(times),
            "statistic": "median",
            "spread": "median_absolute_deviation",
            "window": settings.history_samples,
            "first_completed_at": samples[0].completed_at,
            "last_completed_at": samples[-1].completed_at,
        }
        seconds = median
    else:
        materialization = _materialization(node)
        default_from = "settings.default_seconds" if materialization in settings.default_seconds else "lockgate"
        default = settings.default_seconds.get(materialization, DEFAULT_SECONDS.get(materialization, FALLBACK_SECONDS))
        evidence = {"source": "default", "materialization": materialization, "default_seconds": default}
        evidence["default_from"] = default_from
        seconds, spread, confidence = default, 0.0, "low"
        from_catalog = _catalog_seconds(catalog) if catalog is not None and materialization in _TABLE_LIKE else None
        if from_catalog is not None and from_catalog[0] > default:
            seconds = from_catalog[0]
            evidence = {"source": "catalog", **from_catalog[1], "materialization": materialization, "floor": default}
        if records:
            evidence["unsuccessful_runs"] = len(records)
    seconds = _round(seconds)
    cost, currency, cost_evidence = cost_of(node, seconds, settings)
    evidence.update(cost_evidence)
    return CostEstimate(
        seconds=seconds,
        seconds_spread=_round(spread),
        cost=cost,
        currency=currency,
        confidence=confidence,
        evidence=evidence,
    )


def estimate_costs(
    graph: LogicalGraph,
    unique_ids: Sequence[str],
    history: Mapping[str, Sequence[ExecutionRecord]],
    settings: PlanningSettings,
) -> dict[str, CostEstimate]:
    """Estimates for ``unique_ids`` (nodes of ``graph``), in the given order."""
    nodes, catalog = graph.nodes, graph.catalog
    return {uid: estimate_node(nodes[uid], history.get(uid, ()), catalog.get(uid), settings) for uid in unique_ids}


def _level_makespan(durations: list[float], threads: int) -> float:
    """Longest-processing-time-first over ``threads`` workers (deterministic: durations sorted)."""
    if not durations:
        return 0.0
    workers = [0.0] * max(1, min(threads, len(durations)))
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(workers, workers[0] + duration)
    return max(workers)


def plan_duration(
    levels: Sequence[Sequence[str]],
    seconds: Mapping[str, float],
    threads: int,
) -> float:
    """Wall-clock estimate of running ``levels`` (each a list of unique_ids that may run in parallel, in
    sequence) with ``threads`` threads; ids missing from ``seconds`` take no time."""
    total = 0.0
    for level in levels:
        total += _level_makespan([seconds[uid] for uid in level if uid in seconds], threads)
    return _round(total)
