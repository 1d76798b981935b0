"""Run lifecycle events up to approval (wire tags ``runs.<event_snake>.v1``); one stream per run, ``run-<run_id>``.

A run is requested with its selection, planned (the whole ``ExecutionPlan`` is recorded, so replaying the
stream rebuilds the plan byte for byte), and then either waits for approval or is approved at once when no
rule asks for one. Approval, rejection, staleness and cancellation are events too; the runner's events
(issue 5) continue the same stream.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from contracts.base import Event
from contracts.plan import ExecutionPlan
from contracts.registry import REGISTRY

RunStatus = Literal["queued", "planning", "awaiting_approval", "approved", "rejected", "canceled"]
"""``approved``: waiting for a runner (issue 5 continues from there)."""


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


RunEvent = RunRequested | PlanCreated | PlanApproved | PlanRejected | RunCanceled

RUN_EVENTS: tuple[type[Event], ...] = (RunRequested, PlanCreated, PlanApproved, PlanRejected, RunCanceled)

REGISTRY.register(*RUN_EVENTS)
