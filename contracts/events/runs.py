"""Run lifecycle events up to approval (wire tags ``runs.<event_snake>.v1``); one stream per run, ``run-<run_id>``.

A run is requested with its selection, planned (the whole ``ExecutionPlan`` is recorded, so replaying the
stream rebuilds the plan byte for byte), and then either waits for approval or is approved at once when no
rule asks for one. Approval, rejection, staleness and cancellation are events too; the runner's events
(issue 5: queued, started, node started/finished, cancel requested, finished, requeued) continue the same
stream.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

from contracts.base import Event
from contracts.plan import ExecutionPlan
from contracts.registry import REGISTRY

RunStatus = Literal[
    "planning",
    "awaiting_approval",
    "approved",
    "queued",
    "running",
    "success",
    "warning",
    "failed",
    "rejected",
    "canceled",
]
"""``approved``: waiting for a runner; ``queued``: a runner found the environment's concurrency quota full;
``running``: a runner holds the run's lease. ``success``, ``warning``, ``failed``, ``rejected`` and ``canceled``
are final."""

FinalStatus = Literal["success", "warning", "failed", "canceled"]
"""How an executed run ends: ``warning`` = every node succeeded except warn-severity tests."""

FailureReason = Literal[
    "",
    "node_failed",
    "dbt_error",
    "plan_mismatch",
    "out_of_memory",
    "timeout",
    "runner_lost",
    "workspace_error",
    "runner_error",
    "canceled",
]
"""Why a run ended as it did (empty for ``success``/``warning``). ``dbt_error``: dbt itself could not run (exit
status 2: a parse error, a bad profile); ``plan_mismatch``: what dbt executed differs from the plan;
``runner_lost``: the runner holding the lease stopped heartbeating; ``runner_error``: the runner itself failed
(a defect, or the store or object store unavailable while it finished the run)."""


class RunRequested(Event, frozen=True, kw_only=True, tag="runs.run_requested.v1"):
    context = "runs"
    run_id: uuid.UUID
    project_id: str
    environment_id: str
    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    state_reference: int | None = None
    """Graph version that ``state:`` selectors compare with (None: the environment's default)."""
    full_refresh: bool = False
    requested_at: datetime


class PlanCreated(Event, frozen=True, kw_only=True, tag="runs.plan_created.v1"):
    context = "runs"
    run_id: uuid.UUID
    plan_id: uuid.UUID
    plan: ExecutionPlan
    planned_at: datetime


class PlanApproved(Event, frozen=True, kw_only=True, tag="runs.plan_approved.v1"):
    """Approval of one plan (by its id and hash). ``automatic``: no rule asked for an approval."""

    context = "runs"
    run_id: uuid.UUID
    plan_id: uuid.UUID
    plan_hash: str
    automatic: bool = False
    comment: str = ""
    approved_at: datetime


class PlanRejected(Event, frozen=True, kw_only=True, tag="runs.plan_rejected.v1"):
    context = "runs"
    run_id: uuid.UUID
    plan_id: uuid.UUID
    plan_hash: str
    comment: str
    rejected_at: datetime


class RunCanceled(Event, frozen=True, kw_only=True, tag="runs.run_canceled.v1"):
    context = "runs"
    run_id: uuid.UUID
    reason: str = ""
    canceled_at: datetime


# -- execution (issue 5): appended by the runner holding the run's lease --------------------------------------
#
# Every execution event carries ``attempt`` (1 for the first execution, +1 for each retry after a lost runner):
# an event of an attempt older than the run's current one is a defect. A runner appends with the stream version
# it last saw, so a runner that lost its lease (the reaper ended or re-queued the run meanwhile) is fenced off:
# its next append conflicts and it stops dbt.


class RunQueued(Event, frozen=True, kw_only=True, tag="runs.run_queued.v1"):
    """An approved run waits: its environment runs ``max_concurrent`` runs already. Appended once per wait."""

    context = "runs"
    run_id: uuid.UUID
    reason: str
    queued_at: datetime


class RunStarted(Event, frozen=True, kw_only=True, tag="runs.run_started.v1"):
    """A runner took the run's lease and is preparing its workspace; ``commands`` are the dbt invocations it
    will make, in order (each the argv after ``dbt``, secrets never among them)."""

    context = "runs"
    run_id: uuid.UUID
    plan_id: uuid.UUID
    plan_hash: str
    attempt: int
    runner_id: str
    dbt_version: str
    adapter: str
    commands: tuple[tuple[str, ...], ...]
    started_at: datetime
    commit: str | None = None
    """The commit the workspace checked out (git repositories); None for a local directory."""


class NodeStarted(Event, frozen=True, kw_only=True, tag="runs.node_started.v1"):
    context = "runs"
    run_id: uuid.UUID
    attempt: int
    unique_id: str
    node_uuid: uuid.UUID | None = None
    """None for a node that is not in the plan (which fails the run: plan fidelity)."""
    started_at: datetime


class NodeFinished(Event, frozen=True, kw_only=True, tag="runs.node_finished.v1"):
    """One node's result as dbt reported it: ``status`` is dbt's own (``success``, ``error``, ``pass``, ``fail``,
    ``warn``, ``skipped``, ``no-op``, ``partial success``...: an open set)."""

    context = "runs"
    run_id: uuid.UUID
    attempt: int
    unique_id: str
    node_uuid: uuid.UUID | None = None
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    execution_time: float = 0.0
    rows_affected: int | None = None
    failures: int | None = None
    """Failing rows of a test."""
    query_ids: tuple[str, ...] = ()
    adapter_response: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)
    message: str = ""
    """dbt's message, redacted."""


class RunCancelRequested(Event, frozen=True, kw_only=True, tag="runs.run_cancel_requested.v1"):
    """Someone asked to cancel a running run; the runner interrupts dbt and ends the run ``canceled``."""

    context = "runs"
    run_id: uuid.UUID
    reason: str = ""
    requested_at: datetime


class PlanDeviation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What dbt executed against what the plan said (plan fidelity); empty lists mean they agree."""

    unplanned: tuple[str, ...] = ()
    """Executed (in ``run_results.json``) but not a RUN/PARTIAL item of the plan."""
    missing: tuple[str, ...] = ()
    """RUN/PARTIAL items that dbt never reported (not even as skipped)."""


class RunArtifact(msgspec.Struct, frozen=True, kw_only=True):
    """An object the run stored: ``name`` (``run_results.json``, ``manifest.json``, ``dbt.log.gz``...) and its
    tenant-relative object key."""

    name: str
    key: str
    size: int
    sha256: str


class RunFinished(Event, frozen=True, kw_only=True, tag="runs.run_finished.v1"):
    context = "runs"
    run_id: uuid.UUID
    attempt: int
    status: FinalStatus
    reason: FailureReason = ""
    message: str = ""
    """A sentence for people (redacted): which node failed, what the limit was..."""
    deviation: PlanDeviation | None = None
    artifacts: tuple[RunArtifact, ...] = ()
    node_counts: dict[str, int] = msgspec.field(default_factory=dict)
    """Nodes by dbt status."""
    log_lines: int = 0
    finished_at: datetime


class RunRequeued(Event, frozen=True, kw_only=True, tag="runs.run_requeued.v1"):
    """The runner of ``attempt`` was lost; the environment's retry policy gives the run another attempt."""

    context = "runs"
    run_id: uuid.UUID
    attempt: int
    reason: FailureReason
    message: str = ""
    requeued_at: datetime


RunEvent = (
    RunRequested
    | PlanCreated
    | PlanApproved
    | PlanRejected
    | RunCanceled
    | RunQueued
    | RunStarted
    | NodeStarted
    | NodeFinished
    | RunCancelRequested
    | RunFinished
    | RunRequeued
)

RUN_EVENTS: tuple[type[Event], ...] = (
    RunRequested,
    PlanCreated,
    PlanApproved,
    PlanRejected,
    RunCanceled,
    RunQueued,
    RunStarted,
    NodeStarted,
    NodeFinished,
    RunCancelRequested,
    RunFinished,
    RunRequeued,
)

REGISTRY.register(*RUN_EVENTS)
