"""The run lifecycle up to approval, as pure deciders over a folded ``RunState``.

Transitions (anything else is an ``IllegalTransitionError``, nothing written)::

    (none) --request+plan--> awaiting_approval   (the plan requires approval)
    (none) --request+plan--> approved            (no rule asks for one: approved automatically)
    awaiting_approval --approve--> approved      (approver has the role; in a production environment not
                                                  the requester (separation of duties); plan current)
    awaiting_approval --reject--> rejected
    awaiting_approval --replan--> awaiting_approval | approved   (a new plan replaces the current one)
    planning | awaiting_approval | approved | queued --cancel--> canceled
    approved | queued --start (a runner takes the lease)--> running
    approved --quota full--> queued
    running --cancel--> running (cancel requested; the runner stops dbt) --finish--> canceled
    running --finish--> success | warning | failed | canceled
    running --runner lost, retries left--> approved (requeued: the next start is attempt + 1)

A plan is *stale* when the project has a newer graph version than the one it was built on, or the
environment's policy set changed: approving it is refused (``StalePlanError``) and a re-plan is required.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import assert_never

import msgspec

from contracts.base import Event
from contracts.events.runs import (
    NodeFinished,
    NodeStarted,
    PlanApproved,
    PlanCreated,
    PlanRejected,
    RunCanceled,
    RunCancelRequested,
    RunEvent,
    RunFinished,
    RunQueued,
    RunRequested,
    RunRequeued,
    RunStarted,
    RunStatus,
)
from contracts.ids import StreamId, stream_id
from contracts.plan import ExecutionPlan, PolicyRef
from services.shared.errors import ConflictError, ContractViolationError, ForbiddenError

APPROVER = "approver"
"""The role that may approve plans (``admin`` may too)."""
APPROVING_ROLES = frozenset({APPROVER, "admin"})
TERMINAL: frozenset[RunStatus] = frozenset({"rejected", "canceled", "success", "warning", "failed"})
RUNNABLE: frozenset[RunStatus] = frozenset({"approved", "queued"})
"""A runner may take the run."""
MAX_COMMENT = 2000


class IllegalTransitionError(ConflictError):
    code = "illegal_transition"


class StalePlanError(ConflictError):
    """The plan was built on an older graph version or policy set: re-plan before approving."""

    code = "stale_plan"


def run_stream(run_id: uuid.UUID) -> StreamId:
    return stream_id("run", str(run_id))


class RunState(msgspec.Struct, frozen=True, kw_only=True):
    run_id: uuid.UUID
    project_id: str
    environment_id: str
    status: RunStatus
    requested_by: str
    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    state_reference: int | None = None
    full_refresh: bool = False
    plan_id: uuid.UUID | None = None
    plan: ExecutionPlan | None = None
    approved_by: str | None = None
    attempt: int = 0
    """The current (or last) execution attempt; 0 before the first start."""
    runner_id: str | None = None
    """The runner executing the run (``running`` only)."""
    cancel_requested: bool = False


def evolve_run(state: RunState | None, event: Event, actor: str = "") -> RunState:
    """Fold one event; ``actor`` is the subject recorded in the event's envelope."""
    if not isinstance(event, RunEvent):
        raise ContractViolationError(f"run stream holds a foreign event {type(event).__name__}")
    if isinstance(event, RunRequested):
        if state is not None:
            raise ContractViolationError(f"run stream {event.run_id} is requested twice")
        return RunState(
            run_id=event.run_id,
            project_id=event.project_id,
            environment_id=event.environment_id,
            status="planning",
            requested_by=actor,
            select=event.select,
            exclude=event.exclude,
            selector=event.selector,
            state_reference=event.state_reference,
            full_refresh=event.full_refresh,
        )
    if state is None:
        raise ContractViolationError(f"run stream holds {type(event).__name__} before RunRequested")
    match event:
        case PlanCreated():
            status: RunStatus = "awaiting_approval" if event.plan.approvals else "planning"
            return msgspec.structs.replace(state, status=status, plan_id=event.plan_id, plan=event.plan)
        case PlanApproved():
            return msgspec.structs.replace(state, status="approved", approved_by=actor)
        case PlanRejected():
            return msgspec.structs.replace(state, status="rejected")
        case RunCanceled():
            return msgspec.structs.replace(state, status="canceled")
        case _:
            return _evolve_execution(state, event)


def _evolve_execution(state: RunState, event: RunEvent) -> RunState:
    """Fold one of the runner's events."""
    changes: dict[str, object]
    match event:
        case RunQueued():
            changes = {"status": "queued"}
        case RunStarted():
            changes = {"status": "running", "attempt": event.attempt, "runner_id": event.runner_id}
            changes["cancel_requested"] = False
        case NodeStarted() | NodeFinished():
            changes = {}
        case RunCancelRequested():
            changes = {"cancel_requested": True}
        case RunFinished():
            changes = {"status": event.status, "runner_id": None}
        case RunRequeued():
            changes = {"status": "approved", "runner_id": None, "cancel_requested": False}
        case RunRequested() | PlanCreated() | PlanApproved() | PlanRejected() | RunCanceled():
            raise ContractViolationError(f"{type(event).__name__} is not an execution event")
        case _:
            assert_never(event)
    return msgspec.structs.replace(state, **changes) if changes else state


def _comment(comment: str, *, required: bool) -> str:
    if required and not comment.strip():
        raise ContractViolationError("a rejection needs a comment saying why", field="comment")
    if len(comment) > MAX_COMMENT or "\x00" in comment:
        raise ContractViolationError(f"comment must be at most {MAX_COMMENT} characters, without NUL", field="comment")
    return comment


def planned(run_id: uuid.UUID, plan_id: uuid.UUID, plan: ExecutionPlan, *, now: datetime) -> list[Event]:
    """A new plan, approved at once when none of its rules asks for an approval."""
    events: list[Event] = [PlanCreated(run_id=run_id, plan_id=plan_id, plan=plan, planned_at=now)]
    if not plan.approvals:
        events.append(
            PlanApproved(run_id=run_id, plan_id=plan_id, plan_hash=plan.plan_hash, automatic=True, approved_at=now)
        )
    return events


def replan(state: RunState | None, *, plan_id: uuid.UUID, plan: ExecutionPlan, now: datetime) -> list[Event]:
    """A new plan for a run that waits for approval (typically because its plan went stale)."""
    run = _awaiting(state, "re-plan")
    return planned(run.run_id, plan_id, plan, now=now)


def approve(
    state: RunState | None,
    *,
    plan_id: uuid.UUID,
    approver: str,
    roles: tuple[str, ...],
    comment: str,
    current_graph_version: int,
    current_policy_set: tuple[PolicyRef, ...],
    current_settings: str,
    separate_duties: bool,
    now: datetime,
) -> list[Event]:
    run = _awaiting(state, "approve")
    if not APPROVING_ROLES & set(roles):
        raise ForbiddenError(f"{approver!r} needs the role {APPROVER!r} (or admin) to approve a plan")
    plan = _current_plan(run, plan_id)
    if plan.inputs.graph_version != current_graph_version:
        raise StalePlanError(
            f"plan {plan_id} was built on graph version {plan.inputs.graph_version}, but the project is at "
            f"{current_graph_version}: re-plan before approving",
            plan_id=str(plan_id),
        )
    if plan.inputs.policy_set != current_policy_set or plan.inputs.settings_digest != current_settings:
        raise StalePlanError(
            f"the environment's policy set or settings changed since plan {plan_id} was built: re-plan before approving"
        )
    if separate_duties and approver == run.requested_by:
        raise ForbiddenError(f"{approver!r} requested this run and may not approve it (separation of duties)")
    return [
        PlanApproved(
            run_id=run.run_id,
            plan_id=plan_id,
            plan_hash=plan.plan_hash,
            comment=_comment(comment, required=False),
            approved_at=now,
        )
    ]


def reject(
    state: RunState | None, *, plan_id: uuid.UUID, roles: tuple[str, ...], comment: str, now: datetime
) -> list[Event]:
    run = _awaiting(state, "reject")
    if not APPROVING_ROLES & set(roles):
        raise ForbiddenError(f"the role {APPROVER!r} (or admin) is needed to reject a plan")
    plan = _current_plan(run, plan_id)
    return [
        PlanRejected(
            run_id=run.run_id,
            plan_id=plan_id,
            plan_hash=plan.plan_hash,
            comment=_comment(comment, required=True),
            rejected_at=now,
        )
    ]


def cancel(state: RunState | None, *, reason: str, now: datetime) -> list[Event]:
    """Cancel a run: at once when no runner holds it, else a request the runner acts on (it interrupts dbt)."""
    if state is None:
        raise IllegalTransitionError("no such run")
    if state.status in TERMINAL:
        raise IllegalTransitionError(f"run {state.run_id} is {state.status}; it cannot be canceled")
    reason = _comment(reason, required=False)
    if state.status == "running":
        if state.cancel_requested:
            raise IllegalTransitionError(f"run {state.run_id} is already being canceled")
        return [RunCancelRequested(run_id=state.run_id, reason=reason, requested_at=now)]
    return [RunCanceled(run_id=state.run_id, reason=reason, canceled_at=now)]


def _awaiting(state: RunState | None, verb: str) -> RunState:
    if state is None:
        raise IllegalTransitionError("no such run")
    if state.status != "awaiting_approval":
        raise IllegalTransitionError(f"cannot {verb} run {state.run_id}: it is {state.status}, not awaiting_approval")
    return state


def _current_plan(run: RunState, plan_id: uuid.UUID) -> ExecutionPlan:
    if run.plan is None or run.plan_id != plan_id:
        raise StalePlanError(f"plan {plan_id} is not the run's current plan ({run.plan_id})", plan_id=str(plan_id))
    return run.plan
