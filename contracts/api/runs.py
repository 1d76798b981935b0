"""Request and response bodies of the planning and run routes (``/api/tenants/{t}/projects/{p}/runs|plans``)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec

from contracts.events.runs import PlanDeviation, RunArtifact
from contracts.ids import SLUG_PATTERN

Expression = Annotated[str, msgspec.Meta(max_length=4000, description="dbt selection syntax.")]
Comment = Annotated[str, msgspec.Meta(max_length=2000)]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=SLUG_PATTERN)]


class RunRequestBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to run: a selection (dbt syntax) in an environment (the project is in the path)."""

    environment_id: Slug
    select: Expression | None = None
    exclude: Expression | None = None
    selector: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    state_reference: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """The graph version ``state:`` selectors compare with."""
    full_refresh: bool = False


class RunRequest(RunRequestBody, frozen=True, kw_only=True):
    project_id: Slug


class DecisionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    plan_id: uuid.UUID | None = None
    """The plan being decided on (default: the run's current plan); a stale id is refused."""
    comment: Comment = ""


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Comment = ""


class SelectionView(msgspec.Struct, frozen=True, kw_only=True):
    graph_version: int
    unique_ids: list[str]


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    run_id: uuid.UUID
    project_id: str
    environment_id: str
    status: str
    requested_by: str
    requested_at: datetime
    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    state_reference: int | None = None
    full_refresh: bool = False
    plan_id: uuid.UUID | None = None
    plan_hash: str | None = None
    graph_version: int | None = None
    totals: Any = None
    approvals: Any = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    # -- execution (issue 5) -----------------------------------------------------------------------------------
    queued_at: datetime | None = None
    """When the run last had to wait for its environment's concurrency quota."""
    attempt: int = 0
    """The current execution attempt (0: never started; +1 for each retry after a lost runner)."""
    runner_id: str | None = None
    """The runner of the current (or last) attempt."""
    dbt_version: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    """Why the run ended as it did (or was re-queued): a ``FailureReason``; empty for success/warning."""
    message: str | None = None
    """A sentence for people about the latest state: why it waits, which node failed, what the limit was."""
    node_counts: dict[str, int] | None = None
    artifacts: list[RunArtifact] | None = None
    deviation: PlanDeviation | None = None
    log_lines: int | None = None
    cancel_requested_by: str | None = None
    cancel_requested_at: datetime | None = None
    cancel_reason: str | None = None
    version: int


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    """One node of one attempt, as dbt reported it: ``running`` between its start and its result."""

    attempt: int
    unique_id: str
    node_uuid: uuid.UUID | None = None
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    execution_time: float | None = None
    rows_affected: int | None = None
    failures: int | None = None
    query_ids: list[str] = msgspec.field(default_factory=list)
    adapter_response: dict[str, Any] | None = None
    message: str | None = None


class RunDetail(msgspec.Struct, frozen=True, kw_only=True):
    run: RunView
    plan: Any = None
    explain: Any = None
    nodes: list[NodeView] = msgspec.field(default_factory=list)
    """The timeline of the run's current attempt, in the order its nodes started."""


class RunList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[RunView]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next (older) page; absent when this page is the last."""


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    text: str


class LogPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[LogLine]
    next_from: int
    """The last line number of this page (or ``from`` when it is empty): pass it as ``from`` to read on."""
    final: bool
    """The run has ended and ``items`` reaches its last line: there is nothing more to read."""


# -- the runs list's keyset cursor ------------------------------------------------------------------------------

_RUN_CURSOR = re.compile(r"^(\d{1,19})_([0-9a-f]{32})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RunCursor(msgspec.Struct, frozen=True):
    """Where a page of the runs list ended: the last run's ``requested_at`` and id (the list's sort key)."""

    requested_at: datetime
    run_id: uuid.UUID


def format_run_cursor(cursor: RunCursor) -> str:
    """``<requested_at in microseconds since the epoch>_<run id hex>``: opaque to clients, exact to the row."""
    delta = cursor.requested_at - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}_{cursor.run_id.hex}"


def parse_run_cursor(value: str) -> RunCursor:
    """The inverse of ``format_run_cursor``; ValueError for anything else."""
    match = _RUN_CURSOR.fullmatch(value.strip())
    if match is None:
        msg = f"{value[:60]!r} is not a runs cursor (pass back the next_cursor of the previous page)"
        raise ValueError(msg)
    try:
        at = _EPOCH + timedelta(microseconds=int(match[1]))
    except OverflowError:
        msg = f"runs cursor {value[:60]!r} is out of range"
        raise ValueError(msg) from None
    return RunCursor(at, uuid.UUID(hex=match[2]))
