"""``lockgate``: the command line. Every subcommand runs in-process through the same handlers as the API
(``Runtime.open``), acting as the development principal of the chosen tenant (``--tenant``, default the
configured default tenant). Configuration comes from the environment (``LOCKGATE_HOME``,
``LOCKGATE_DATABASE_URL``, ``LOCKGATE_NATS_URL``, ...) and an optional ``lockgate.toml``.

Output is for people by default and msgspec JSON with ``--json``. Errors print one line on stderr and
exit with 2 for bad input (usage errors, values the rules refuse) and 1 for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import msgspec

from contracts.api.events import EventList, EventView, parse_cursor
from contracts.api.tenancy import EnvironmentView, OrgView, ProjectView, TenantView
from contracts.commands.tenancy import CreateEnvironment, CreateOrg, CreateProject, CreateTenant
from contracts.events.tenancy import SecretRef, TargetValue
from projections.tenancy import queries
from services.bootstrap import bootstrap
from services.runtime import Runtime
from services.shared.auth import dev_principal, is_loopback
from services.shared.commands import CommandContext
from services.shared.errors import AlreadyExistsError, ContractViolationError, LockgateError, NotFoundError
from services.shared.settings import Settings, load_settings
from services.shared.telemetry import configure_logging
from services.tenancy import handlers
from services.tenancy.readmodel import TenancyReadModel, read_model
from services.tenancy.rules import check_id

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1

T = TypeVar("T")
V = TypeVar("V", TenantView, OrgView, ProjectView, EnvironmentView)

_json = msgspec.json.Encoder()


class BadInputError(ContractViolationError):
    """A command-line value that cannot be used (reported with exit status 2)."""


# -- plumbing --------------------------------------------------------------------------------


def _version() -> str:
    try:
        return importlib.metadata.version("lockgate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _emit(value: object) -> None:
    sys.stdout.write(_json.encode(value).decode() + "\n")


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"lockgate: error: {message}\n")
    raise SystemExit(code)


def _context(settings: Settings, tenant: str) -> CommandContext:
    return CommandContext(actor=dev_principal(tenant).actor(), correlation_id=uuid.uuid4())


async def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    runtime = await Runtime.open(settings)
    try:
        await bootstrap(runtime.store, settings)
        return await work(runtime)
    finally:
        await runtime.close()


def _run(args: argparse.Namespace, work: Callable[[Runtime], Awaitable[T]]) -> T:
    settings: Settings = args.settings
    return asyncio.run(_with_runtime(settings, work))


def _tenant(args: argparse.Namespace) -> str:
    tenant: str = args.tenant or args.settings.default_tenant
    return check_id("tenant", tenant)


async def _show(model: TenancyReadModel, fetch: Callable[[], Awaitable[V | None]], version: int, what: str) -> V:
    return await model.wait_for(fetch, version, what)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    if not rows:
        _say("(none)")
        return
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    for row in (header, *rows):
        _say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# -- tenant / org ----------------------------------------------------------------------------


def cmd_tenant_create(args: argparse.Namespace) -> None:
    tenant = check_id("tenant", args.tenant_id)
    settings: Settings = args.settings

    async def work(runtime: Runtime) -> TenantView:
        store = runtime.store.for_tenant(tenant)
        context = _context(settings, tenant)
        result = await handlers.handle_create_tenant(
            store, CreateTenant(tenant_id=tenant, name=args.name or tenant), context
        )
        with contextlib.suppress(AlreadyExistsError):
            await handlers.handle_create_org(store, CreateOrg(org_id=settings.default_org, name="Default"), context)
        model = read_model(runtime.store)
        return await _show(model, lambda: queries.get_tenant(model.db, tenant), result.version, f"tenant {tenant!r}")

    view = _run(args, work)
    _emit(view) if args.json else _say(
        f"created tenant {view.tenant_id!r} ({view.name}) with org {settings.default_org!r}"
    )


def cmd_org_create(args: argparse.Namespace) -> None:
    tenant = _tenant(args)

    async def work(runtime: Runtime) -> OrgView:
        store = runtime.store.for_tenant(tenant)
        cmd = CreateOrg(org_id=args.org_id, name=args.name or args.org_id)
        result = await handlers.handle_create_org(store, cmd, _context(args.settings, tenant))
        model = read_model(runtime.store)
        fetch = lambda: queries.get_org(model.db, tenant, args.org_id)  # noqa: E731
        return await _show(model, fetch, result.version, f"org {args.org_id!r}")

    view = _run(args, work)
    if args.json:
        _emit(view)
    else:
        _say(f"created org {view.org_id!r} ({view.name}) in tenant {tenant!r}")


def cmd_org_list(args: argparse.Namespace) -> None:
    tenant = _tenant(args)

    async def work(runtime: Runtime) -> list[OrgView]:
        model = read_model(runtime.store)
        await model.catch_up()
        return await queries.list_orgs(model.db, tenant, status=args.status, limit=queries.MAX_LIMIT)

    items = _run(args, work)
    if args.json:
        _emit(items)
        return
    _table([(o.org_id, o.name, o.status, str(o.version)) for o in items], ("ORG", "NAME", "STATUS", "VERSION"))


# -- project ---------------------------------------------------------------------------------


def _repository_argument(value: str) -> str:
    """A local path given on the command line may be relative (``./shop``, ``~/dbt``): it is resolved here, on
    the caller's side, because the rules accept absolute paths only."""
    if value.startswith(("/", "-")) or ":" in value:
        return value  # absolute, or a URL / remote spec / hostile value: the rules judge it as given
    return str(Path(value).expanduser().resolve())


def cmd_project_create(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    settings: Settings = args.settings
    cmd = CreateProject(
        project_id=args.project_id,
        org_id=args.org or settings.default_org,
        name=args.name or args.project_id,
        repository=_repository_argument(args.repo),
        ref=args.ref,
        roundtrip_level=args.roundtrip,
        editable_models=tuple(args.editable_model or ()),
    )

    async def work(runtime: Runtime) -> ProjectView:
        result = await handlers.handle_create_project(runtime.store.for_tenant(tenant), cmd, _context(settings, tenant))
        model = read_model(runtime.store)
        fetch = lambda: queries.get_project(model.db, tenant, cmd.project_id)  # noqa: E731
        return await _show(model, fetch, result.version, f"project {cmd.project_id!r}")

    view = _run(args, work)
    if args.json:
        _emit(view)
    else:
        _say(f"created project {view.project_id!r} ({view.name}) in org {view.org_id!r}: {view.repository.location}")


def cmd_project_list(args: argparse.Namespace) -> None:
    tenant = _tenant(args)

    async def work(runtime: Runtime) -> list[ProjectView]:
        model = read_model(runtime.store)
        await model.catch_up()
        return await queries.list_projects(
            model.db, tenant, org_id=args.org, status=args.status, limit=queries.MAX_LIMIT
        )

    items = _run(args, work)
    if args.json:
        _emit(items)
        return
    _table(
        [(p.project_id, p.org_id, p.name, p.status, str(p.roundtrip_level), p.repository.location) for p in items],
        ("PROJECT", "ORG", "NAME", "STATUS", "ROUNDTRIP", "REPOSITORY"),
    )


# -- environment -----------------------------------------------------------------------------


def _target_value(raw: str) -> TargetValue:
    """``threads=4`` is a number, ``flag=true`` a boolean, ``schema=analytics`` a string; JSON quotes force a
    string (``schema='"0123"'``)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, bool | int | str):
        return value
    return raw


def _pairs(values: Sequence[str] | None, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInputError(f"{what} {item[:60]!r} must look like NAME=VALUE")
        pairs.append((key, value))
    return pairs


def cmd_env_create(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    target: dict[str, TargetValue] = {key: _target_value(value) for key, value in _pairs(args.target, "--target")}
    secrets: dict[str, SecretRef] = {}
    for name, ref in _pairs(args.secret, "--secret"):
        secret_id, sep, fingerprint = ref.rpartition("@")
        if not sep or not secret_id:
            raise BadInputError(f"--secret {name!r} must look like NAME=SECRET_ID@FINGERPRINT")
        secrets[name] = SecretRef(secret_id=secret_id, fingerprint=fingerprint)
    cmd = CreateEnvironment(
        project_id=args.project_id,
        environment_id=args.environment_id,
        name=args.name or args.environment_id,
        adapter_type=args.adapter,
        target=target,
        secrets=secrets,
        production=args.production,
    )

    async def work(runtime: Runtime) -> EnvironmentView:
        store = runtime.store.for_tenant(tenant)
        result = await handlers.handle_create_environment(store, cmd, _context(args.settings, tenant))
        model = read_model(runtime.store)
        fetch = lambda: queries.get_environment(model.db, tenant, cmd.project_id, cmd.environment_id)  # noqa: E731
        return await _show(model, fetch, result.version, f"environment {cmd.environment_id!r}")

    view = _run(args, work)
    if args.json:
        _emit(view)
    else:
        _say(f"created environment {view.environment_id!r} of project {view.project_id!r} ({view.adapter_type})")


def cmd_env_list(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    project_id = check_id("project", args.project_id)

    async def work(runtime: Runtime) -> list[EnvironmentView]:
        model = read_model(runtime.store)
        await model.catch_up()
        if await queries.get_project(model.db, tenant, project_id) is None:
            raise NotFoundError(f"project {project_id!r} not found")
        return await queries.list_environments(
            model.db, tenant, project_id, status=args.status, limit=queries.MAX_LIMIT
        )

    items = _run(args, work)
    if args.json:
        _emit(items)
        return
    _table(
        [(e.environment_id, e.name, e.adapter_type, e.status, "yes" if e.production else "no") for e in items],
        ("ENVIRONMENT", "NAME", "ADAPTER", "STATUS", "PRODUCTION"),
    )


# -- events ----------------------------------------------------------------------------------


def cmd_events_list(args: argparse.Namespace) -> None:
    tenant = _tenant(args)
    try:
        after = parse_cursor(args.after or "0")
    except ValueError as exc:
        raise BadInputError(str(exc)) from None

    async def work(runtime: Runtime) -> list[EventView]:
        events = await runtime.store.for_tenant(tenant).read_after(
            after, limit=args.limit, types=args.type or None, stream_id=args.stream
        )
        return [EventView.of(event) for event in events]

    items = _run(args, work)
    page = EventList(items=items, next_after=items[-1].position if len(items) == args.limit else None)
    if args.json:
        _emit(page)
        return
    _table(
        [(e.position, e.occurred_at.isoformat(), f"{e.stream_id}@{e.version}", e.type, e.metadata.actor.subject)
         for e in items],
        ("POSITION", "OCCURRED_AT", "STREAM@VERSION", "TYPE", "ACTOR"),
    )  # fmt: skip
    if page.next_after:
        _say(f"(more: --after {page.next_after})")


# -- replay / workers / serve ----------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> None:
    from projections.registry import known_projectors  # noqa: PLC0415
    from projections.replay import replay  # noqa: PLC0415

    async def work(runtime: Runtime) -> Any:
        registry = known_projectors()
        return await replay(runtime.store, list(registry), names=[args.projection] if args.projection else None)

    report = _run(args, work)
    if args.json:
        _emit(report)
        return
    if not report.projections:
        _say("no projections registered; nothing replayed")
    for projection in report.projections:
        _say(f"replayed {projection.name}: {projection.applied} events applied")
    _say(f"{report.events} events read in {report.seconds:.2f} s")


async def _with_metrics(settings: Settings, stop: asyncio.Event, work: Awaitable[None]) -> None:
    """Run ``work``, serving Prometheus metrics on 127.0.0.1:``runner_metrics_port`` meanwhile if one is set."""
    if settings.runner_metrics_port is None:
        await work
        return
    from services.runner.metrics import serve_metrics  # noqa: PLC0415

    server = asyncio.create_task(serve_metrics("127.0.0.1", settings.runner_metrics_port, stop))
    try:
        await work
    finally:
        stop.set()
        await server


def cmd_worker(args: argparse.Namespace) -> None:
    """``worker relay`` publishes the store to NATS JetStream (needs LOCKGATE_NATS_URL); ``worker projector``
    runs every registered projector, fed from JetStream when a NATS URL is set, else from the store;
    ``worker runner`` executes approved runs (from JetStream's work queue when a NATS URL is set)."""
    settings: Settings = args.settings
    if args.kind == "relay" and settings.nats_url is None:
        raise BadInputError("'lockgate worker relay' publishes to NATS: set LOCKGATE_NATS_URL")

    async def work(runtime: Runtime) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if args.kind == "relay":
            sys.stderr.write("lockgate: relay running; Ctrl-C stops it\n")
            await runtime.run_relay(stop)
            return
        if settings.nats_url is not None:
            await runtime.connect_nats()
        if args.kind == "runner":
            sys.stderr.write("lockgate: runner running; Ctrl-C stops it (runs in progress are interrupted)\n")
            await _with_metrics(settings, stop, runtime.run_runner(stop))
            return
        sys.stderr.write("lockgate: projector worker running; Ctrl-C stops it\n")
        await runtime.run_projectors(stop)

    _run(args, work)


def cmd_serve(args: argparse.Namespace) -> None:
    settings: Settings = args.settings
    host: str = args.host or settings.host
    port: int = args.port or settings.port
    if settings.dev_principal and not is_loopback(host):
        raise BadInputError(
            f"refusing to serve on {host!r}: the development principal (requests without credentials act as an "
            "admin) is enabled; bind to 127.0.0.1, or set LOCKGATE_DEV_PRINCIPAL=false and configure credentials"
        )
    import uvicorn  # noqa: PLC0415

    from services.api.app import create_app  # noqa: PLC0415

    configure_logging(settings.log_level, json=settings.log_json)

    app = create_app(settings)  # opens the runtime with its workers and the default tenant on startup
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def cmd_openapi(args: argparse.Namespace) -> None:
    """Print the API's OpenAPI document (the web UI generates its API types from it)."""
    from services.api.app import create_app  # noqa: PLC0415

    document = create_app(args.settings).openapi_schema.to_schema()  # no runtime is opened: nothing is served
    sys.stdout.write(json.dumps(document, indent=1, sort_keys=True) + "\n")


# -- parser ----------------------------------------------------------------------------------


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {value!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 1..65535")
    return port


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"limit {value!r} is not a number") from None
    if not 1 <= limit <= 10_000:
        raise argparse.ArgumentTypeError("limit must be in 1..10000")
    return limit


def _roundtrip(value: str) -> int:
    if value not in {"0", "1", "2"}:
        raise argparse.ArgumentTypeError("roundtrip level must be 0, 1 or 2")
    return int(value)


def _common_parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tenant", help="tenant to act in (default: the configured default tenant)")
    common.add_argument("--json", action="store_true", help="machine-readable JSON output")
    status = argparse.ArgumentParser(add_help=False)
    status.add_argument("--status", choices=["active", "archived"], help="only rows with this status")
    return common, status


Subparsers = Any  # argparse's _SubParsersAction is private


def _add_tenancy(sub: Subparsers, common: argparse.ArgumentParser, status: argparse.ArgumentParser) -> None:
    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="action", required=True, metavar="ACTION")
    tenant_create = tenant.add_parser("create", parents=[common], help="create a tenant (and its default org)")
    tenant_create.add_argument("tenant_id")
    tenant_create.add_argument("--name")
    tenant_create.set_defaults(func=cmd_tenant_create)

    org = sub.add_parser("org", help="orgs").add_subparsers(dest="action", required=True, metavar="ACTION")
    org_create = org.add_parser("create", parents=[common], help="create an org")
    org_create.add_argument("org_id")
    org_create.add_argument("--name")
    org_create.set_defaults(func=cmd_org_create)
    org.add_parser("list", parents=[common, status], help="list orgs").set_defaults(func=cmd_org_list)

    project = sub.add_parser("project", help="projects").add_subparsers(dest="action", required=True, metavar="ACTION")
    project_create = project.add_parser("create", parents=[common], help="create a project")
    project_create.add_argument("project_id")
    project_create.add_argument("--repo", required=True, help="dbt repository: a local path or a git URL")
    project_create.add_argument("--ref", help="git branch or tag")
    project_create.add_argument("--org", help="org (default: the configured default org)")
    project_create.add_argument("--name", help="display name (default: the id)")
    project_create.add_argument("--roundtrip", type=_roundtrip, default=0, help="roundtrip level 0, 1 or 2")
    project_create.add_argument(
        "--editable-model", action="append", metavar="MODEL", help="a model editable at level 2 (repeatable)"
    )
    project_create.set_defaults(func=cmd_project_create)
    project_list = project.add_parser("list", parents=[common, status], help="list projects")
    project_list.add_argument("--org", help="only this org's projects")
    project_list.set_defaults(func=cmd_project_list)

    env = sub.add_parser("env", help="environments").add_subparsers(dest="action", required=True, metavar="ACTION")
    env_create = env.add_parser("create", parents=[common], help="create an environment of a project")
    env_create.add_argument("project_id")
    env_create.add_argument("environment_id")
    env_create.add_argument("--adapter", required=True, help="dbt adapter type: duckdb, snowflake, postgres, ...")
    env_create.add_argument("--name", help="display name (default: the id)")
    env_create.add_argument(
        "--target", action="append", metavar="KEY=VALUE", help="a non-secret target setting (repeatable)"
    )
    env_create.add_argument(
        "--secret", action="append", metavar="NAME=SECRET_ID@FINGERPRINT", help="a secret reference (repeatable)"
    )
    env_create.add_argument("--production", action="store_true", help="mark as a production environment")
    env_create.set_defaults(func=cmd_env_create)
    env_list = env.add_parser("list", parents=[common, status], help="list a project's environments")
    env_list.add_argument("project_id")
    env_list.set_defaults(func=cmd_env_list)


def build_parser() -> argparse.ArgumentParser:
    common, status = _common_parents()
    parser = argparse.ArgumentParser(prog="lockgate", description="Lockgate: an event-sourced control plane for dbt.")
    parser.add_argument("--version", action="version", version=f"lockgate {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP API (and, embedded, everything else)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to bind (default 8000)")
    serve.set_defaults(func=cmd_serve)

    openapi = sub.add_parser("openapi", help="print the HTTP API's OpenAPI document (JSON)")
    openapi.set_defaults(func=cmd_openapi)

    worker = sub.add_parser("worker", help="run a follower process (relay, projector or runner)")
    worker.add_argument("kind", choices=["relay", "projector", "runner"])
    worker.set_defaults(func=cmd_worker)

    _add_tenancy(sub, common, status)
    from services.cli_graph import add_graph_commands  # noqa: PLC0415 - it imports this module's plumbing

    add_graph_commands(sub, common)
    from services.cli_runs import add_run_commands  # noqa: PLC0415 - it imports this module's plumbing

    add_run_commands(sub, common)

    events = sub.add_parser("events", help="the event log").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    events_list = events.add_parser("list", parents=[common], help="list the tenant's events in commit order")
    events_list.add_argument("--stream", help="only this stream id (e.g. project-shop)")
    events_list.add_argument("--type", action="append", help="only this wire tag (repeatable)")
    events_list.add_argument("--after", metavar="POS", help="position cursor '<tx_id>:<global_position>'")
    events_list.add_argument("--limit", type=_limit, default=1000)
    events_list.set_defaults(func=cmd_events_list)

    replay = sub.add_parser("replay", parents=[common], help="rebuild read models from position 0")
    replay.add_argument("--projection", metavar="NAME", help="only this read model (default: all)")
    replay.set_defaults(func=cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = load_settings()
        configure_logging("warning", json=False)
        args.func(args)
    except ContractViolationError as exc:
        _fail(exc.message, EXIT_BAD_INPUT)
    except LockgateError as exc:
        _fail(exc.message, EXIT_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into one line
        _fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILED)


if __name__ == "__main__":
    main()
