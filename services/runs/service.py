"""Planning and the run lifecycle up to approval: the command side that the API and the CLI call.

``preview`` builds a plan and records nothing (``lockgate plan``); ``request`` records the run, its plan
and, when no rule asks for one, its automatic approval in one append to ``run-<run_id>``; ``approve``,
``reject`` and ``cancel`` fold the run's stream, decide (``services.runs.domain``) and append with the
version they read, so two approvers racing cannot both win.

Inputs of a plan, gathered here and passed to the pure planner: the project's current graph (the
ingestion's snapshot, or a fold of its events), the ``state:`` reference graph (a given graph version),
the nodes' last statuses, run history and source freshness (graph read model), and the environment's
planning settings. The state reference defaults to the graph version of the environment's last successful run
(runs read model), so that after a good run ``skip_if_no_change`` skips what has not changed since.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec

from contracts.api.runs import RunRequest, SelectionView
from contracts.base import Event
from contracts.envelope import NewEvent, Scope
from contracts.events.runs import RunRequested
from contracts.plan import ExecutionPlan, PlanInputs, PlanningSettings, PolicyRef, digest_settings
from projections.graph import queries as graph_queries
from projections.runs import queries as run_queries
from services.ingestion.readmodel import graph_read_model
from services.ingestion.service import Ingestion
from services.ingestion.snapshots import GraphSnapshot
from services.planning.planner import build_plan
from services.planning.policies import resolve_policies
from services.planning.selection.cache import SELECTORS
from services.runs import domain
from services.runs.domain import RunState, evolve_run, run_stream
from services.runs.readmodel import runs_read_model
from services.shared.commands import CommandContext
from services.shared.errors import ArchivedError, ConcurrencyConflictError, ContractViolationError, NotFoundError
from services.shared.eventstore.port import NO_STREAM, TenantEventStore
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.objectstore.port import TenantObjectStore
from services.tenancy.domain import EnvironmentState
from services.tenancy.handlers import load_environment

_NO_PLAN = uuid.UUID(int=0)
_ATTEMPTS = 3


class Planned(msgspec.Struct, frozen=True, kw_only=True):
    plan: ExecutionPlan
    selected: tuple[str, ...]


class RunOutcome(msgspec.Struct, frozen=True, kw_only=True):
    run_id: uuid.UUID
    status: str
    stream_version: int
    plan_id: uuid.UUID | None = None
    plan: ExecutionPlan | None = None


def settings_of(env: EnvironmentState, *, full_refresh: bool) -> PlanningSettings:
    """An environment's planning settings: its production flag, adapter and threads, plus the optional cost
    and approval parameters set in its target: ``currency``, ``rate_per_second``, ``warehouse_size``,
    ``credit_price``, ``budget_cost``, ``budget_seconds``, ``budget_action``, ``approval_cost_threshold``."""
    target = env.target

    def number(key: str) -> float | None:
        value = target.get(key)
        if isinstance(value, bool) or value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise ContractViolationError(f"environment setting {key!r} must be a number, not {value!r}") from None

    def text(key: str) -> str | None:
        value = target.get(key)
        return None if value is None else str(value)

    threads = target.get("threads")
    budget_action = text("budget_action") or "drop"
    if budget_action not in ("drop", "approve"):
        raise ContractViolationError(
            f"environment setting budget_action must be 'drop' or 'approve', not {budget_action!r}"
        )
    return PlanningSettings(
        production=env.production,
        adapter_type=env.adapter_type,
        threads=threads if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0 else 1,
        full_refresh=full_refresh,
        currency=text("currency"),
        rate_per_second=number("rate_per_second"),
        warehouse_size=text("warehouse_size"),
        credit_price=number("credit_price"),
        budget_cost=number("budget_cost"),
        budget_seconds=number("budget_seconds"),
        budget_action="approve" if budget_action == "approve" else "drop",
        approval_cost_threshold=number("approval_cost_threshold"),
    )


class RunService:
    def __init__(self, store: PostgresEventStore, ingestion: Ingestion) -> None:
        self._store = store
        self._ingestion = ingestion

    async def _environment(self, tenant: TenantEventStore, project: str, environment: str) -> EnvironmentState:
        env = await load_environment(tenant, project, environment)
        if env is None:
            raise NotFoundError(f"environment {project}/{environment} not found", environment_id=environment)
        if env.status == "archived":
            raise ArchivedError(f"environment {project}/{environment} is archived", environment_id=environment)
        return env

    async def _graphs(
        self, tenant: TenantEventStore, objects: TenantObjectStore, project: str, state_version: int | None
    ) -> tuple[GraphSnapshot, GraphSnapshot | None]:
        """The project's current graph, and the graph version ``state:`` methods compare with (if one is given)."""
        snapshot = await self._ingestion.current_graph(tenant, objects, project)
        if snapshot is None:
            raise NotFoundError(f"project {project!r} has no graph yet: ingest its artifacts first")
        if state_version is None:
            return snapshot, None
        model = graph_read_model(self._store)
        await model.catch_up()
        row = await model.resolve_version(tenant.tenant_id, project, state_version)
        return snapshot, await self._ingestion.graph_at(tenant, objects, project, row.graph_version, row.snapshot_key)

    async def select(
        self,
        tenant: TenantEventStore,
        objects: TenantObjectStore,
        project: str,
        select: str | None,
        *,
        exclude: str | None = None,
        selector: str | None = None,
        state_version: int | None = None,
    ) -> SelectionView:
        """The unique_ids a dbt selection picks in the project's current graph (``lockgate select``, ``/select``)."""
        snapshot, reference = await self._graphs(tenant, objects, project, state_version)
        engine = SELECTORS.get(
            (tenant.tenant_id, project, snapshot.graph_version, reference.graph_version if reference else None, {}),
            snapshot.graph,
            reference.graph if reference is not None else None,
        )
        ids = engine.select(select, exclude=exclude, selector=selector)
        return SelectionView(graph_version=snapshot.graph_version, unique_ids=list(ids))

    async def preview(
        self, tenant: TenantEventStore, objects: TenantObjectStore, request: RunRequest, *, now: datetime | None = None
    ) -> Planned:
        """Build the plan a run would get now. Records nothing."""
        env = await self._environment(tenant, request.project_id, request.environment_id)
        state_version = request.state_reference
        if state_version is None:  # by default: what the environment's last successful run was built on
            runs = runs_read_model(self._store)
            await runs.catch_up()
            state_version = await run_queries.last_successful_graph_version(
                runs.db, tenant.tenant_id, request.project_id, request.environment_id
            )
        snapshot, reference = await self._graphs(tenant, objects, request.project_id, state_version)
        db, tid, project = graph_read_model(self._store).db, tenant.tenant_id, request.project_id
        statuses = await graph_queries.last_statuses(db, tid, project)
        freshness = await graph_queries.freshness(db, tid, project)
        selector = SELECTORS.get(
            (tid, project, snapshot.graph_version, reference.graph_version if reference else None, statuses),
            snapshot.graph,
            reference.graph if reference is not None else None,
        )
        selected = selector.select(request.select, exclude=request.exclude, selector=request.selector)
        history = await graph_queries.history(db, tid, project, list(selected))
        settings = settings_of(env, full_refresh=request.full_refresh)
        inputs = PlanInputs(
            project_id=project,
            environment_id=request.environment_id,
            graph_version=snapshot.graph_version,
            state_reference=reference.graph_version if reference is not None else None,
            select=(request.select,) if request.select else (),
            exclude=(request.exclude,) if request.exclude else (),
            selector=request.selector,
            as_of=now or datetime.now(UTC),
        )
        plan = build_plan(
            graph=snapshot.graph,
            node_uuids=snapshot.identities,
            selected=selected,
            reference=reference.graph if reference is not None else None,
            history=history,
            freshness=freshness,
            settings=settings,
            inputs=inputs,
        )
        return Planned(plan=plan, selected=tuple(selected))

    async def request(
        self,
        tenant: TenantEventStore,
        objects: TenantObjectStore,
        request: RunRequest,
        context: CommandContext,
        *,
        now: datetime | None = None,
    ) -> RunOutcome:
        at = now or datetime.now(UTC)
        planned = await self.preview(tenant, objects, request, now=at)
        run_id, plan_id = uuid.uuid4(), uuid.uuid4()
        events = [
            RunRequested(
                run_id=run_id,
                project_id=request.project_id,
                environment_id=request.environment_id,
                select=request.select,
                exclude=request.exclude,
                selector=request.selector,
                state_reference=request.state_reference,
                full_refresh=request.full_refresh,
                requested_at=at,
            ),
            *domain.planned(run_id, plan_id, planned.plan, now=at),
        ]
        scope = Scope(tenant_id=tenant.tenant_id, project_id=request.project_id, environment_id=request.environment_id)
        result = await tenant.append(
            run_stream(run_id),
            [NewEvent(event_id=uuid.uuid4(), payload=event, occurred_at=at) for event in events],
            expected_version=NO_STREAM,
            metadata=context.metadata(scope),
        )
        status = "approved" if not planned.plan.approvals else "awaiting_approval"
        return RunOutcome(
            run_id=run_id, status=status, stream_version=result.last_version, plan_id=plan_id, plan=planned.plan
        )

    async def load(self, tenant: TenantEventStore, run_id: uuid.UUID) -> tuple[RunState, int]:
        state: RunState | None = None
        version = 0
        for recorded in await tenant.read_stream(run_stream(run_id)):
            state, version = evolve_run(state, recorded.payload, recorded.metadata.actor.subject), recorded.version
        if state is None:
            raise NotFoundError(f"run {run_id} not found", run_id=str(run_id))
        return state, version

    async def approve(
        self,
        tenant: TenantEventStore,
        objects: TenantObjectStore,
        run_id: uuid.UUID,
        context: CommandContext,
        *,
        plan_id: uuid.UUID | None = None,
        comment: str = "",
        now: datetime | None = None,
    ) -> RunOutcome:
        async def decide(state: RunState) -> list[Event]:
            env = await self._environment(tenant, state.project_id, state.environment_id)
            current = await self._ingestion.current_graph(tenant, objects, state.project_id)
            settings = settings_of(env, full_refresh=state.full_refresh)
            policies = resolve_policies(settings.policy_order)
            return domain.approve(
                state,
                plan_id=plan_id or state.plan_id or _NO_PLAN,
                approver=context.actor.subject,
                roles=context.actor.roles,
                comment=comment,
                current_graph_version=current.graph_version if current is not None else 0,
                current_policy_set=tuple(PolicyRef(policy_id=p.id, version=p.version) for p in policies),
                current_settings=digest_settings(settings),
                separate_duties=env.production,
                now=now or datetime.now(UTC),
            )

        return await self._decide(tenant, run_id, decide, context, now)

    async def replan(
        self,
        tenant: TenantEventStore,
        objects: TenantObjectStore,
        run_id: uuid.UUID,
        context: CommandContext,
        *,
        now: datetime | None = None,
    ) -> RunOutcome:
        """Plan a waiting run again from its request, on the project's graph and the policies of now."""

        async def decide(state: RunState) -> list[Event]:
            request = RunRequest(
                project_id=state.project_id,
                environment_id=state.environment_id,
                select=state.select,
                exclude=state.exclude,
                selector=state.selector,
                state_reference=state.state_reference,
                full_refresh=state.full_refresh,
            )
            planned = await self.preview(tenant, objects, request, now=now)
            return domain.replan(state, plan_id=uuid.uuid4(), plan=planned.plan, now=now or datetime.now(UTC))

        return await self._decide(tenant, run_id, decide, context, now)

    async def reject(
        self,
        tenant: TenantEventStore,
        run_id: uuid.UUID,
        context: CommandContext,
        *,
        comment: str,
        plan_id: uuid.UUID | None = None,
        now: datetime | None = None,
    ) -> RunOutcome:
        async def decide(state: RunState) -> list[Event]:
            return domain.reject(
                state,
                plan_id=plan_id or state.plan_id or _NO_PLAN,
                roles=context.actor.roles,
                comment=comment,
                now=now or datetime.now(UTC),
            )

        return await self._decide(tenant, run_id, decide, context, now)

    async def cancel(
        self,
        tenant: TenantEventStore,
        run_id: uuid.UUID,
        context: CommandContext,
        *,
        reason: str = "",
        now: datetime | None = None,
    ) -> RunOutcome:
        async def decide(state: RunState) -> list[Event]:
            return domain.cancel(state, reason=reason, now=now or datetime.now(UTC))

        return await self._decide(tenant, run_id, decide, context, now)

    async def _decide(
        self,
        tenant: TenantEventStore,
        run_id: uuid.UUID,
        decide: Callable[[RunState], Awaitable[list[Event]]],
        context: CommandContext,
        now: datetime | None,
    ) -> RunOutcome:
        """Load, decide, append with the version read. A concurrent decision on the same run makes the append
        fail; the command is then decided again on the new state (which usually refuses it: already approved)."""
        for attempt in range(_ATTEMPTS):
            state, version = await self.load(tenant, run_id)
            events = await decide(state)
            at = now or datetime.now(UTC)
            scope = Scope(tenant_id=tenant.tenant_id, project_id=state.project_id, environment_id=state.environment_id)
            try:
                result = await tenant.append(
                    run_stream(run_id),
                    [NewEvent(event_id=uuid.uuid4(), payload=event, occurred_at=at) for event in events],
                    expected_version=version,
                    metadata=context.metadata(scope),
                )
            except ConcurrencyConflictError:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            after = state
            for event in events:
                after = evolve_run(after, event, context.actor.subject)
            return RunOutcome(
                run_id=run_id, status=after.status, stream_version=result.last_version, plan_id=after.plan_id
            )
        raise AssertionError  # pragma: no cover - the loop returns or raises
