"""Request and response bodies of the planning and run routes (``/api/tenants/{t}/projects/{p}/runs|plans``)."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast, get_args

import msgspec

from contracts.events.runs import PlanDeviation, RunArtifact
from contracts.explain import PlanExplanation
from contracts.ids import SLUG_PATTERN
from contracts.plan import ApprovalRequirement, ExecutionPlan, PlanTotals

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
    totals: PlanTotals | None = None
    approvals: list[ApprovalRequirement] | None = None
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


class PlanPreview(msgspec.Struct, frozen=True, kw_only=True):
    """The plan a run would get now, and its explanation (``POST /plans``: nothing is recorded)."""

    plan: ExecutionPlan
    explain: PlanExplanation


class RunDetail(msgspec.Struct, frozen=True, kw_only=True):
    run: RunView
    plan: ExecutionPlan | None = None
    explain: PlanExplanation | None = None
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


# -- the runs list's order and keyset cursor ---------------------------------------------------------------------

RunSort = Literal["requested_at", "started_at", "finished_at", "duration", "status", "environment", "project", "actor"]
"""What the runs list can be ordered by (then by run id). Runs that have not started or finished sort as if
they had at the epoch (duration: as -1 s), so every run has a place in every order."""
TIME_SORTS: frozenset[RunSort] = frozenset({"requested_at", "started_at", "finished_at"})
TEXT_SORTS: frozenset[RunSort] = frozenset({"status", "environment", "project", "actor"})
SortValue = datetime | float | str

_LEGACY_CURSOR = re.compile(r"^(\d{1,19})_([0-9a-f]{32})$")
_CURSOR = re.compile(
    r"^(?P<sort>[a-z_]{1,20})\.(?P<order>asc|desc)\.(?P<value>-?\d{1,19}(?:\.\d{1,9})?|[A-Za-z0-9_-]{0,700})"
    r"~(?P<run>[0-9a-f]{32})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RunCursor(msgspec.Struct, frozen=True):
    """Where a page of the runs list ended: the last run's sort value and id, in the order the list was read."""

    value: SortValue
    run_id: uuid.UUID
    sort: RunSort = "requested_at"
    descending: bool = True


def _micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _bad(value: str, why: str = "is not a runs cursor (pass back the next_cursor of the previous page)") -> ValueError:
    return ValueError(f"{value[:60]!r} {why}")


def format_run_cursor(cursor: RunCursor) -> str:
    """Opaque to clients, exact to the row: ``<micros>_<run id hex>`` for the default order (newest first),
    ``<sort>.<asc|desc>.<value>~<run id hex>`` for the others (text values base64url-encoded)."""
    value = cursor.value
    if isinstance(value, datetime):
        if cursor.sort == "requested_at" and cursor.descending:
            return f"{_micros(value)}_{cursor.run_id.hex}"
        text = str(_micros(value))
    elif isinstance(value, float):
        text = f"{value:.6f}"
    else:
        text = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
    return f"{cursor.sort}.{'desc' if cursor.descending else 'asc'}.{text}~{cursor.run_id.hex}"


def parse_run_cursor(value: str) -> RunCursor:
    """The inverse of ``format_run_cursor``; ValueError for anything else."""
    text = value.strip()
    try:
        if legacy := _LEGACY_CURSOR.fullmatch(text):
            return RunCursor(_EPOCH + timedelta(microseconds=int(legacy[1])), uuid.UUID(hex=legacy[2]))
        match = _CURSOR.fullmatch(text)
        if match is None or match["sort"] not in get_args(RunSort):
            raise _bad(value)
        sort = cast("RunSort", match["sort"])
        raw = match["value"]
        parsed: SortValue
        if sort in TIME_SORTS:
            parsed = _EPOCH + timedelta(microseconds=int(raw))
        elif sort in TEXT_SORTS:
            parsed = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        else:
            parsed = float(raw)
        return RunCursor(parsed, uuid.UUID(hex=match["run"]), sort=sort, descending=match["order"] == "desc")
    except (OverflowError, UnicodeDecodeError, binascii.Error, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(repr(value[:60])):
            raise
        raise _bad(value, "is not a valid runs cursor") from None
