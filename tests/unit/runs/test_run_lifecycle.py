"""The run lifecycle's deciders, without I/O: every legal transition, and each illegal one refused with a typed
error and nothing to record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.base import Event
from contracts.events.runs import PlanApproved, PlanCreated, PlanRejected, RunCanceled, RunRequested
from contracts.plan import ApprovalRequirement, ExecutionPlan, PlanInputs, PlanTotals, PolicyRef, Reason
from services.runs import domain
from services.runs.domain import IllegalTransitionError, RunState, StalePlanError, evolve_run
from services.shared.errors import ContractViolationError, ForbiddenError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RUN, PLAN = uuid.UUID(int=1), uuid.UUID(int=2)
POLICIES = (PolicyRef(policy_id="skip_if_no_change", version=1),)
SETTINGS = "digest-1"


def plan(*, approvals: bool, graph_version: int = 3) -> ExecutionPlan:
    reason = Reason(policy_id="approvals", policy_version=1, code="production", message="production environment")
    return ExecutionPlan(
        inputs=PlanInputs(
            project_id="shop",
            environment_id="prod",
            graph_version=graph_version,
            as_of=NOW,
            policy_set=POLICIES,
            settings_digest=SETTINGS,
        ),
        totals=PlanTotals(),
        approvals=(ApprovalRequirement(role="approver", rule_id="production", reason=reason),) if approvals else (),
        plan_hash="h" * 64,
    )


def fold(events: list[tuple[Event, str]]) -> RunState:
    state: RunState | None = None
    for event, actor in events:
        state = evolve_run(state, event, actor)
    assert state is not None
    return state


def requested(*, approvals: bool = True) -> list[tuple[Event, str]]:
    request = RunRequested(run_id=RUN, project_id="shop", environment_id="prod", select="+orders", requested_at=NOW)
    return [(request, "alice")] + [(e, "alice") for e in domain.planned(RUN, PLAN, plan(approvals=approvals), now=NOW)]


def approve(state: RunState, **overrides: object) -> list[Event]:
    values: dict[str, object] = {
        "plan_id": PLAN,
        "approver": "bob",
        "roles": ("approver",),
        "comment": "looks right",
        "current_graph_version": 3,
        "current_policy_set": POLICIES,
        "current_settings": SETTINGS,
        "separate_duties": True,
        "now": NOW,
    }
    values.update(overrides)
    return domain.approve(state, **values)  # type: ignore[arg-type]


def test_a_plan_that_needs_approval_waits_for_it() -> None:
    state = fold(requested())
    assert (state.status, state.plan_id, state.requested_by) == ("awaiting_approval", PLAN, "alice")


def test_a_plan_without_approval_rules_is_approved_automatically() -> None:
    events = requested(approvals=False)
    assert [type(e) for e, _ in events] == [RunRequested, PlanCreated, PlanApproved]
    approved = events[-1][0]
    assert isinstance(approved, PlanApproved)
    assert approved.automatic
    assert fold(events).status == "approved"


def test_an_approver_approves_and_the_run_is_approved() -> None:
    state = fold(requested())
    (event,) = approve(state)
    assert isinstance(event, PlanApproved)
    assert (event.plan_hash, event.comment, event.automatic) == ("h" * 64, "looks right", False)
    after = evolve_run(state, event, "bob")
    assert (after.status, after.approved_by) == ("approved", "bob")


def test_approving_twice_is_an_illegal_transition() -> None:
    state = fold(requested())
    state = evolve_run(state, approve(state)[0], "bob")
    with pytest.raises(IllegalTransitionError, match="approved, not awaiting_approval"):
        approve(state)


def test_the_requester_cannot_approve_in_production_but_may_elsewhere() -> None:
    state = fold(requested())
    with pytest.raises(ForbiddenError, match="separation of duties"):
        approve(state, approver="alice")
    assert approve(state, approver="alice", separate_duties=False)


def test_a_user_without_the_approver_role_cannot_approve_or_reject() -> None:
    state = fold(requested())
    with pytest.raises(ForbiddenError, match="approver"):
        approve(state, roles=("viewer",))
    with pytest.raises(ForbiddenError):
        domain.reject(state, plan_id=PLAN, roles=("viewer",), comment="no", now=NOW)


def test_a_plan_built_on_an_older_graph_or_policy_set_is_stale() -> None:
    state = fold(requested())
    with pytest.raises(StalePlanError, match="graph version 3, but the project is at 4"):
        approve(state, current_graph_version=4)
    with pytest.raises(StalePlanError, match="policy set"):
        approve(state, current_policy_set=(PolicyRef(policy_id="skip_if_no_change", version=2),))
    with pytest.raises(StalePlanError, match="settings"):
        approve(state, current_settings="digest-2")
    with pytest.raises(StalePlanError, match="not the run's current plan"):
        approve(state, plan_id=uuid.UUID(int=99))


def test_a_rejection_needs_a_comment_and_ends_the_run() -> None:
    state = fold(requested())
    with pytest.raises(ContractViolationError, match="comment"):
        domain.reject(state, plan_id=PLAN, roles=("approver",), comment="  ", now=NOW)
    (event,) = domain.reject(state, plan_id=PLAN, roles=("approver",), comment="too expensive", now=NOW)
    assert isinstance(event, PlanRejected)
    after = evolve_run(state, event, "bob")
    assert after.status == "rejected"
    with pytest.raises(IllegalTransitionError):
        approve(after)
    with pytest.raises(IllegalTransitionError, match="rejected"):
        domain.cancel(after, reason="", now=NOW)


def test_cancel_is_allowed_in_every_non_terminal_state_and_only_once() -> None:
    for events in (requested(), requested(approvals=False)):
        state = fold(events)
        (event,) = domain.cancel(state, reason="not today", now=NOW)
        assert isinstance(event, RunCanceled)
        canceled = evolve_run(state, event, "alice")
        assert canceled.status == "canceled"
        with pytest.raises(IllegalTransitionError, match="canceled"):
            domain.cancel(canceled, reason="", now=NOW)


def test_a_stream_that_does_not_start_with_a_request_is_corrupt() -> None:
    with pytest.raises(ContractViolationError, match="before RunRequested"):
        evolve_run(None, RunCanceled(run_id=RUN, canceled_at=NOW), "x")
    state = fold(requested())
    with pytest.raises(ContractViolationError, match="requested twice"):
        evolve_run(state, requested()[0][0], "x")


def test_hostile_or_oversized_comments_are_refused() -> None:
    state = fold(requested())
    with pytest.raises(ContractViolationError):
        approve(state, comment="x" * 2001)
    with pytest.raises(ContractViolationError):
        approve(state, comment="a\x00b")
    (event,) = approve(state, comment="<script>alert(1)</script> ✓ \u202e")
    assert isinstance(event, PlanApproved)
    assert event.comment == "<script>alert(1)</script> ✓ \u202e"


def test_a_waiting_run_can_be_replanned_and_the_new_plan_is_the_current_one() -> None:
    state = fold(requested())
    new_plan_id = uuid.UUID(int=3)
    events = domain.replan(state, plan_id=new_plan_id, plan=plan(approvals=True, graph_version=4), now=NOW)
    assert [type(e) for e in events] == [PlanCreated]
    after = evolve_run(state, events[0], "alice")
    assert (after.status, after.plan_id) == ("awaiting_approval", new_plan_id)
    assert approve(after, plan_id=new_plan_id, current_graph_version=4)
    with pytest.raises(StalePlanError, match="not the run's current plan"):
        approve(after, plan_id=PLAN, current_graph_version=4)
    no_approval = domain.replan(after, plan_id=uuid.UUID(int=4), plan=plan(approvals=False), now=NOW)
    assert [type(e) for e in no_approval] == [PlanCreated, PlanApproved]
    approved = evolve_run(after, approve(after, plan_id=new_plan_id, current_graph_version=4)[0], "bob")
    with pytest.raises(IllegalTransitionError, match="re-plan"):
        domain.replan(approved, plan_id=uuid.UUID(int=5), plan=plan(approvals=True), now=NOW)
