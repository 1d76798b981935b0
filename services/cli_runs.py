"""``lockgate select``, ``plan``, ``run``, ``approve``, ``reject``, ``cancel`` and ``runs``: the planning and run
commands of the CLI. They run the same services as the API, as the development principal of the tenant."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import msgspec

from contracts.api.runs import RunRequest, RunView
from projections.runs import queries as run_queries
from services.cli import BadInputError, Subparsers, _context, _emit, _run, _say, _table, _tenant
from services.planning.explain import explain, explanation_json, render_tree
from services.runs.readmodel import runs_read_model
from services.runs.service import RunOutcome, RunService
from services.runtime import Runtime
from services.shared.settings import Settings
from services.tenancy.rules import check_id


def _run_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a run id (a UUID)") from None


def _request(args: argparse.Namespace) -> RunRequest:
    return RunRequest(
        project_id=check_id("project", args.project_id),
        environment_id=check_id("environment", args.env),
        select=args.select,
        exclude=args.exclude,
        selector=args.selector,
        state_reference=args.state,
        full_refresh=args.full_refresh,
    )


def cmd_select(args: argparse.Namespace) -> None:
    tenant, project = _tenant(args), check_id("project", args.project_id)
    if args.expr is not None and args.select is not None:
        raise BadInputError("give the selection once: as EXPR or as --select")
    expression = args.expr if args.expr is not None else args.select

    async def work(runtime: Runtime) -> list[str]:
        selection = await RunService(runtime.store, runtime.ingestion).select(
            runtime.store.for_tenant(tenant),
            runtime.objects.for_tenant(tenant),
            project,
            expression,
            exclude=args.exclude,
            selector=args.selector,
            state_version=args.state,
        )
        return selection.unique_ids

    ids = _run(args, work)
    if args.json:
        _emit(ids)
        return
    for unique_id in ids:
        _say(unique_id)


def cmd_plan(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    request = _request(args)

    async def work(runtime: Runtime) -> Any:
        return await RunService(runtime.store, runtime.ingestion).preview(
            runtime.store.for_tenant(tenant), runtime.objects.for_tenant(tenant), request
        )

    planned = _run(args, work)
    if args.json:
        _emit({"plan": planned.plan, "explain": explanation_json(explain(planned.plan))})
        return
    _say(render_tree(explain(planned.plan)))


def _show_run(view: RunView) -> None:
    where = f"{view.project_id}/{view.environment_id}, graph version {view.graph_version}"
    _say(f"run {view.run_id}: {view.status} ({where})")
    if view.plan_hash:
        _say(f"plan {view.plan_id} hash {view.plan_hash}")
    if view.decided_by:
        _say(f"decided by {view.decided_by}: {view.comment or '(no comment)'}")


async def _view(runtime: Runtime, tenant: str, outcome: RunOutcome) -> RunView:
    return await runs_read_model(runtime.store).run(tenant, outcome.run_id, version=outcome.stream_version)


def cmd_run(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    settings: Settings = args.settings
    request = _request(args)

    async def work(runtime: Runtime) -> RunView:
        outcome = await RunService(runtime.store, runtime.ingestion).request(
            runtime.store.for_tenant(tenant), runtime.objects.for_tenant(tenant), request, _context(settings, tenant)
        )
        return await _view(runtime, tenant, outcome)

    view = _run(args, work)
    if args.json:
        _emit(view)
        return
    _show_run(view)
    if view.status == "awaiting_approval":
        _say(f"approve with: lockgate approve {view.run_id}")


def cmd_decide(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    settings: Settings = args.settings
    if args.action == "reject" and not (args.comment or "").strip():
        raise BadInputError("a rejection needs --comment saying why")

    async def work(runtime: Runtime) -> RunView:
        service = RunService(runtime.store, runtime.ingestion)
        store, context = runtime.store.for_tenant(tenant), _context(settings, tenant)
        if args.action == "approve":
            outcome = await service.approve(
                store, runtime.objects.for_tenant(tenant), args.run_id, context, comment=args.comment or ""
            )
        elif args.action == "reject":
            outcome = await service.reject(store, args.run_id, context, comment=args.comment)
        elif args.action == "replan":
            outcome = await service.replan(store, runtime.objects.for_tenant(tenant), args.run_id, context)
        else:
            outcome = await service.cancel(store, args.run_id, context, reason=args.comment or "")
        return await _view(runtime, tenant, outcome)

    view = _run(args, work)
    if args.json:
        _emit(view)
        return
    _show_run(view)


def cmd_runs(args: argparse.Namespace) -> None:
    tenant = _tenant(args)

    async def work(runtime: Runtime) -> Any:
        model = runs_read_model(runtime.store)
        if args.action == "show":
            view = await model.run(tenant, args.run_id)
            raw = await run_queries.get_plan(model.db, tenant, args.run_id)
            return {"run": view, "plan": msgspec.json.decode(raw) if raw else None}
        await model.catch_up()
        return await run_queries.list_runs(model.db, tenant, project=args.project, status=args.status, limit=args.limit)

    result = _run(args, work)
    if args.json:
        _emit(result)
        return
    if args.action == "show":
        _show_run(result["run"])
        return
    _table(
        [
            (str(r.run_id), r.project_id, r.environment_id, r.status, r.requested_by, r.requested_at.isoformat())
            for r in result
        ],
        ("RUN", "PROJECT", "ENV", "STATUS", "REQUESTED_BY", "REQUESTED_AT"),
    )


def _selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", "-s", help="dbt selection syntax")
    parser.add_argument("--exclude", help="dbt selection syntax")
    parser.add_argument("--selector", help="a YAML selector of the project")
    parser.add_argument("--state", type=int, metavar="GRAPH_VERSION", help="reference graph version for state:")


def add_run_commands(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    sel = sub.add_parser("select", parents=[common], help="print the unique_ids a dbt selection picks")
    sel.add_argument("project_id")
    sel.add_argument("expr", nargs="?", help="dbt selection syntax (same as --select)")
    _selection_arguments(sel)
    sel.set_defaults(func=cmd_select)

    for name, func, helptext in (
        ("plan", cmd_plan, "show the plan a run would get now (records nothing)"),
        ("run", cmd_run, "request a run: planned now, then approved or awaiting approval"),
    ):
        parser = sub.add_parser(name, parents=[common], help=helptext)
        parser.add_argument("project_id")
        parser.add_argument("--env", required=True, help="environment")
        _selection_arguments(parser)
        parser.add_argument("--full-refresh", action="store_true")
        parser.set_defaults(func=func)

    for action, helptext in (
        ("approve", "approve a run's plan"),
        ("reject", "reject a run's plan"),
        ("cancel", "cancel a run"),
        ("replan", "plan a waiting run again (after its plan went stale)"),
    ):
        parser = sub.add_parser(action, parents=[common], help=helptext)
        parser.add_argument("run_id", type=_run_id)
        parser.add_argument("--comment", help="why (required to reject)")
        parser.set_defaults(func=cmd_decide, action=action)

    runs = sub.add_parser("runs", help="runs").add_subparsers(dest="action", required=True, metavar="ACTION")
    show = runs.add_parser("show", parents=[common], help="one run with its plan")
    show.add_argument("run_id", type=_run_id)
    show.set_defaults(func=cmd_runs)
    listing = runs.add_parser("list", parents=[common], help="runs, newest first")
    listing.add_argument("--project")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_runs)
