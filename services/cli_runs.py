"""``lockgate select``, ``plan``, ``run``, ``approve``, ``reject``, ``cancel`` and ``runs``: the planning and run
commands of the CLI. They run the same services as the API, as the development principal of the tenant."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from contracts.api.runs import LogLine, NodeView, RunRequest, RunView
from projections.runs import queries as run_queries
from services.cli import BadInputError, Subparsers, _context, _emit, _run, _say, _table, _tenant
from services.planning.explain import explain, explanation_json, render_tree
from services.runner import logs
from services.runs.readmodel import RunsReadModel, runs_read_model
from services.runs.service import RunOutcome, RunService
from services.runtime import Runtime
from services.shared.settings import Settings
from services.tenancy.rules import check_id

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_AWAITING_APPROVAL = 3
EXIT_STILL_RUNNING = 4
RUN_EXIT_CODES = {"success": EXIT_OK, "warning": EXIT_OK, "failed": 1, "canceled": 1, "rejected": 1}
WAIT_HELP = """exit status with --wait: 0 the run ended success or warning; 1 it ended failed, canceled or rejected (or
the command itself failed); 2 bad input; 3 the run awaits approval (not waited for: approve it, then follow it
with 'lockgate runs logs RUN --follow'); 4 --timeout passed before the run ended (it goes on)."""

_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _when(value: str) -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or a duration ago: ``30m``, ``2h``, ``7d``."""
    duration = _DURATION.fullmatch(value.strip())
    if duration is not None:
        return datetime.now(UTC) - timedelta(**{_UNITS[duration[2]]: int(duration[1])})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an ISO date/time nor a duration like 2h or 7d"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _line_number(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a line number (0 or more)")
    return int(value)


def _page_size(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= run_queries.MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"limit {value!r} is not a number in 1..{run_queries.MAX_LIMIT}")
    return int(value)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


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
    if view.attempt:
        runner = f"{view.runner_id or '?'} (dbt {view.dbt_version or '?'})"
        _say(f"attempt {view.attempt} on {runner}, started {_at(view.started_at)}")
    if view.cancel_requested_by:
        _say(f"cancel requested by {view.cancel_requested_by}: {view.cancel_reason or '(no reason)'}")
    if view.finished_at:
        counts = ", ".join(f"{n} {status}" for status, n in sorted((view.node_counts or {}).items()))
        _say(f"finished {_at(view.finished_at)}{f': {counts}' if counts else ''}")
    if view.reason or view.message:
        _say(f"{view.reason or 'note'}: {view.message or ''}".rstrip(": "))


def _at(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds") if when is not None else "-"


def _show_nodes(nodes: list[NodeView]) -> None:
    _table(
        [
            (
                n.unique_id,
                n.status,
                _at(n.started_at),
                f"{n.execution_time:.2f}s" if n.execution_time is not None else "-",
                str(n.rows_affected) if n.rows_affected is not None else "-",
                (n.message or "").splitlines()[0][:80] if n.message else "",
            )
            for n in nodes
        ],
        ("NODE", "STATUS", "STARTED", "TIME", "ROWS", "MESSAGE"),
    )


def _print_line(line: LogLine, *, json: bool) -> None:
    sys.stdout.write((msgspec.json.encode(line).decode() if json else line.text) + "\n")
    sys.stdout.flush()


async def _follow(runtime: Runtime, tenant: str, run_id: uuid.UUID, after: int, *, show: bool, json: bool) -> None:
    """Print (when ``show``) the run's log lines after ``after`` as they come, until the run has ended."""
    model = runs_read_model(runtime.store)
    async for line in logs.follow(
        runtime.store.pool, tenant, run_id, after, finished=lambda: model.final_log_lines(tenant, run_id)
    ):
        if show:
            _print_line(line, json=json)


async def _view(runtime: Runtime, tenant: str, outcome: RunOutcome) -> RunView:
    return await runs_read_model(runtime.store).run(tenant, outcome.run_id, version=outcome.stream_version)


def cmd_run(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    settings: Settings = args.settings
    request = _request(args)

    if args.timeout is not None and not args.wait:
        raise BadInputError("--timeout only applies with --wait")

    async def work(runtime: Runtime) -> tuple[RunView, bool]:
        outcome = await RunService(runtime.store, runtime.ingestion).request(
            runtime.store.for_tenant(tenant), runtime.objects.for_tenant(tenant), request, _context(settings, tenant)
        )
        view = await _view(runtime, tenant, outcome)
        if not args.wait or view.status == "awaiting_approval" or view.status in RUN_EXIT_CODES:
            return view, True
        if not args.json:
            _show_run(view)
            sys.stdout.flush()
        await runtime.ensure_local_runner()
        try:
            async with asyncio.timeout(args.timeout):
                await _follow(runtime, tenant, view.run_id, 0, show=not args.json, json=False)
        except TimeoutError:
            return await runs_read_model(runtime.store).run(tenant, view.run_id), False
        return await runs_read_model(runtime.store).run(tenant, view.run_id), True

    view, ended = _run(args, work)
    if args.json:
        _emit(view)
    elif args.wait and ended and view.status in RUN_EXIT_CODES:
        _say(f"run {view.run_id}: {view.status}" + (f" ({view.reason}: {view.message})" if view.reason else ""))
    else:
        _show_run(view)
    if view.status == "awaiting_approval":
        sys.stderr.write(f"run {view.run_id} awaits approval; approve with: lockgate approve {view.run_id}\n")
        if args.wait:
            raise SystemExit(EXIT_AWAITING_APPROVAL)
        return
    if not args.wait:
        return
    if not ended:
        sys.stderr.write(f"run {view.run_id} is still {view.status} after {args.timeout} s (it goes on)\n")
        raise SystemExit(EXIT_STILL_RUNNING)
    raise SystemExit(RUN_EXIT_CODES.get(view.status, EXIT_RUN_FAILED))


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
    """``runs show`` and ``runs list``."""
    tenant = _tenant(args)

    async def work(runtime: Runtime) -> Any:
        model = runs_read_model(runtime.store)
        if args.action == "show":
            view = await model.run(tenant, args.run_id)
            raw = await run_queries.get_plan(model.db, tenant, args.run_id)
            nodes = await run_queries.run_nodes(model.db, tenant, args.run_id)
            return {"run": view, "plan": msgspec.json.decode(raw) if raw else None, "nodes": nodes}
        await model.catch_up()
        page = await run_queries.list_runs(
            model.db,
            tenant,
            project=args.project,
            environment=args.env,
            status=args.status,
            actor=args.actor,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
        return page.items

    result = _run(args, work)
    if args.json:
        _emit(result)
        return
    if args.action == "show":
        _show_run(result["run"])
        if result["nodes"]:
            _say("")
            _show_nodes(result["nodes"])
        return
    _table(
        [
            (str(r.run_id), r.project_id, r.environment_id, r.status, r.requested_by, r.requested_at.isoformat())
            for r in result
        ],
        ("RUN", "PROJECT", "ENV", "STATUS", "REQUESTED_BY", "REQUESTED_AT"),
    )


def cmd_runs_logs(args: argparse.Namespace) -> None:
    """``runs logs RUN [--follow] [--from N]``: the stored lines, or live ones until the run ends."""
    tenant = _tenant(args)

    async def work(runtime: Runtime) -> None:
        model = runs_read_model(runtime.store)
        view = await model.run(tenant, args.run_id)
        if args.follow:
            await _follow(runtime, tenant, args.run_id, args.from_line, show=True, json=args.json)
            return
        await _print_stored(runtime, model, tenant, view, args.from_line, json=args.json)

    _run(args, work)


async def _print_stored(
    runtime: Runtime, model: RunsReadModel, tenant: str, view: RunView, after: int, *, json: bool
) -> None:
    printed = False
    while batch := await logs.read_lines(model.db, tenant, view.run_id, after, logs.PAGE):
        printed = True
        for line in batch:
            _print_line(line, json=json)
        after = batch[-1].line
    stored = next((a for a in view.artifacts or () if a.name == logs.LOG_ARTIFACT), None)
    if not printed and stored is not None:  # the live lines are gone: the log the run stored
        objects = runtime.objects.for_tenant(tenant)
        for line in await logs.read_stored_lines(objects, stored, after, view.log_lines or 0):
            _print_line(line, json=json)


def cmd_runs_cancel(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    settings: Settings = args.settings

    async def work(runtime: Runtime) -> RunView:
        outcome = await RunService(runtime.store, runtime.ingestion).cancel(
            runtime.store.for_tenant(tenant), args.run_id, _context(settings, tenant), reason=args.reason or ""
        )
        return await _view(runtime, tenant, outcome)

    view = _run(args, work)
    if args.json:
        _emit(view)
        return
    _show_run(view)
    if view.status == "running":
        _say("cancel requested: the runner stops dbt and ends the run canceled")


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
        parser = sub.add_parser(
            name,
            parents=[common],
            help=helptext,
            epilog=WAIT_HELP if name == "run" else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("project_id")
        parser.add_argument("--env", required=True, help="environment")
        _selection_arguments(parser)
        parser.add_argument("--full-refresh", action="store_true")
        if name == "run":
            parser.add_argument(
                "--wait", action="store_true", help="wait until the run ends, printing its log (see exit status)"
            )
            parser.add_argument("--timeout", type=_seconds, metavar="S", help="with --wait: stop waiting after S s")
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
    show = runs.add_parser("show", parents=[common], help="one run: status, reason, node timeline (--json: and plan)")
    show.add_argument("run_id", type=_run_id)
    show.set_defaults(func=cmd_runs)
    listing = runs.add_parser("list", parents=[common], help="runs, newest first")
    listing.add_argument("--project")
    listing.add_argument("--env", help="environment")
    listing.add_argument("--status")
    listing.add_argument("--actor", help="who requested the run")
    listing.add_argument("--since", type=_when, help="requested at or after: ISO date/time or a duration ago (2h, 7d)")
    listing.add_argument("--until", type=_when, help="requested before: ISO date/time or a duration ago")
    listing.add_argument(
        "--limit", type=_page_size, default=50, metavar="N", help=f"at most N runs (1..{run_queries.MAX_LIMIT})"
    )
    listing.set_defaults(func=cmd_runs)
    log = runs.add_parser("logs", parents=[common], help="a run's log lines (--json: one JSON object per line)")
    log.add_argument("run_id", type=_run_id)
    log.add_argument("--follow", "-f", action="store_true", help="print new lines as they come until the run ends")
    log.add_argument("--from", dest="from_line", type=_line_number, default=0, metavar="N", help="after line N")
    log.set_defaults(func=cmd_runs_logs)
    cancel = runs.add_parser("cancel", parents=[common], help="cancel a run (a running one: its runner stops dbt)")
    cancel.add_argument("run_id", type=_run_id)
    cancel.add_argument("--reason", help="why")
    cancel.set_defaults(func=cmd_runs_cancel)
