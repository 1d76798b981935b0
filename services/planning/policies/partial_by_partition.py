"""``partial_by_partition``: rebuild only the new partitions of models that declare how they are partitioned.

Only models with an explicit partition contract are eligible:

- dbt microbatch: ``config.materialized == "incremental"``, ``config.incremental_strategy == "microbatch"``, an
  ``event_time`` and a ``batch_size`` (``hour``/``day``/``month``/``year``); ``lookback`` as dbt (default 1);
- or a declared ``meta.lockgate.partition`` (in ``meta`` or ``config.meta``): ``{event_time, batch_size,
  lookback (default 0)}``.

The window: from ``settings.partition_start`` or else the end of the model's last successful run, floored to
the batch and moved back ``lookback`` batches; to ``settings.partition_end`` or else the plan's ``as_of``,
rounded up to the next batch boundary (the current, incomplete batch is included, as dbt does). Nothing is
decided on a full refresh. An eligible model with no start (never succeeded, no configured start) or an empty
window gets a RUN decision saying why it is built in full.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.graph import GraphNode
from contracts.plan import BatchSize, Decision, PartitionWindow
from services.planning.costs import parse_timestamp, successful_samples
from services.planning.policies._base import reason
from services.planning.policies._context import PolicyContext, materialization


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PartitionContract:
    event_time: str
    batch_size: BatchSize
    lookback: int
    source: str
    """``microbatch``, ``meta.lockgate.partition`` or ``config.meta.lockgate.partition``."""


def _batch_size(value: object) -> BatchSize | None:
    if not isinstance(value, str):
        return None
    size = value.strip().lower()
    match size:
        case "hour" | "day" | "month" | "year":
            return size
        case _:
            return None


def _lookback(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def partition_contract(node: GraphNode) -> PartitionContract | None:
    """The node's explicit partition contract, or None (then it is never PARTIAL)."""
    if node.resource_type != "model":
        return None
    config = node.config
    event_time, size = config.get("event_time"), _batch_size(config.get("batch_size"))
    if (
        materialization(node) == "incremental"
        and config.get("incremental_strategy") == "microbatch"
        and isinstance(event_time, str)
        and event_time
        and size is not None
    ):
        return PartitionContract(
            event_time=event_time, batch_size=size, lookback=_lookback(config.get("lookback"), 1), source="microbatch"
        )
    for meta, where in ((node.meta, "meta"), (config.get("meta"), "config.meta")):
        lockgate = meta.get("lockgate") if isinstance(meta, dict) else None
        declared: Any = lockgate.get("partition") if isinstance(lockgate, dict) else None
        if isinstance(declared, dict):
            column, size = declared.get("event_time"), _batch_size(declared.get("batch_size"))
            if isinstance(column, str) and column and size is not None:
                lookback = _lookback(declared.get("lookback"), 0)
                return PartitionContract(
                    event_time=column, batch_size=size, lookback=lookback, source=f"{where}.lockgate.partition"
                )
    return None


def floor_batch(at: datetime, size: BatchSize) -> datetime:
    at = at.astimezone(UTC)
    match size:
        case "hour":
            return at.replace(minute=0, second=0, microsecond=0)
        case "day":
            return at.replace(hour=0, minute=0, second=0, microsecond=0)
        case "month":
            return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        case "year":
            return at.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def shift_batches(at: datetime, size: BatchSize, count: int) -> datetime:
    """``at`` (a batch boundary) moved by ``count`` batches."""
    match size:
        case "hour":
            return at + timedelta(hours=count)
        case "day":
            return at + timedelta(days=count)
        case "month":
            months = at.year * 12 + at.month - 1 + count
            return at.replace(year=months // 12, month=months % 12 + 1)
        case "year":
            return at.replace(year=at.year + count)


def ceil_batch(at: datetime, size: BatchSize) -> datetime:
    floor = floor_batch(at, size)
    return floor if floor == at.astimezone(UTC) else shift_batches(floor, size, 1)


def count_batches(start: datetime, end: datetime, size: BatchSize) -> int:
    match size:
        case "hour":
            return int((end - start) // timedelta(hours=1))
        case "day":
            return (end - start).days
        case "month":
            return (end.year - start.year) * 12 + end.month - start.month
        case "year":
            return end.year - start.year


class PartialByPartition:
    id = "partial_by_partition"
    version = 1

    def evaluate(self, context: PolicyContext) -> list[Decision]:
        settings = context.settings
        if settings.full_refresh:
            return []
        nodes = context.graph.nodes
        decisions: list[Decision] = []
        for uid in context.items:
            contract = partition_contract(nodes[uid])
            if contract is None:
                continue
            evidence: dict[str, Any] = {
                "contract": contract.source,
                "event_time": contract.event_time,
                "batch_size": contract.batch_size,
            }
            begin: datetime | None
            if settings.partition_start is not None:
                begin, evidence["start_from"] = settings.partition_start, "settings.partition_start"
            else:
                last = successful_samples(context.history.get(uid, ()), 1)
                begin = parse_timestamp(last[-1].completed_at) if last else None
                if begin is not None:
                    evidence["start_from"] = "last successful run"
                    evidence["last_success_completed_at"] = last[-1].completed_at
            if begin is None:
                message = "partitioned, but no successful run and no configured start: built in full"
                why = reason(self, "partition_no_start", message, evidence)
                decisions.append(Decision(unique_id=uid, action="RUN", reason=why))
                continue
            until = settings.partition_end or context.now
            evidence["end_from"] = "settings.partition_end" if settings.partition_end else "plan as_of"
            size = contract.batch_size
            start = shift_batches(floor_batch(begin, size), size, -contract.lookback)
            end = ceil_batch(until, size)
            batches = count_batches(start, end, size)
            if batches <= 0:
                message = f"partition window from {begin.isoformat()} to {until.isoformat()} is empty: built in full"
                why = reason(self, "partition_window_empty", message, evidence)
                decisions.append(Decision(unique_id=uid, action="RUN", reason=why))
                continue
            window = PartitionWindow(
                start=start,
                end=end,
                event_time=contract.event_time,
                batch_size=size,
                batches=batches,
                lookback=contract.lookback,
            )
            message = (
                f"{batches} {size} batch(es) of {contract.event_time} from {start.isoformat()} to {end.isoformat()}"
                f" ({contract.source})"
            )
            why = reason(self, "partition_window", message, evidence)
            decisions.append(Decision(unique_id=uid, action="PARTIAL", reason=why, window=window))
        return decisions
