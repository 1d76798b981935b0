"""``lockgate ingest``, ``lockgate graph`` and ``lockgate demo``: the graph commands of the CLI.

``ingest`` runs the same ingestion service as the API, then waits for the graph read model to show it,
so that ``lockgate graph`` right after answers with what was just ingested. ``--from-repo`` runs
``dbt parse`` in a temporary copy of the project's repository (the repository itself is never written)
and ingests what dbt produced.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from contracts.api.graph import GraphVersionView, IngestionOutcome
from projections.graph import queries
from services.cli import BadInputError, Subparsers, _context, _emit, _run, _say, _table, _tenant
from services.ingestion.readmodel import graph_read_model
from services.ingestion.service import ArtifactKind
from services.runtime import Runtime
from services.shared.settings import Settings
from services.tenancy.handlers import load_environment, load_project
from services.tenancy.rules import check_id


def _file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value!r} is not a readable file")
    return path


async def ingest_files(
    runtime: Runtime, tenant: str, project: str, files: dict[ArtifactKind, Path], settings: Settings
) -> IngestionOutcome:
    return await runtime.ingest(tenant, project, files, _context(settings, tenant))


PARSE_PLACEHOLDER = "lockgate-parse-placeholder"
"""What a secret of the environment becomes in a parse-only profile: ``dbt parse`` never connects."""


async def _parse_profile(store: Any, project: str, env: str | None) -> dict[str, str | int | bool] | None:
    """The dbt target of environment ``env`` for ``dbt parse`` (None: a throwaway DuckDB target)."""
    if env is None:
        return None
    state = await load_environment(store, project, check_id("environment", env))
    if state is None:
        raise BadInputError(f"environment {project}/{env} not found")
    return {
        "type": state.adapter_type,
        **state.target,
        **dict.fromkeys(state.secrets, PARSE_PLACEHOLDER),
    }


def cmd_ingest(args: argparse.Namespace) -> None:
    tenant, project = _tenant(args), check_id("project", args.project_id)
    settings: Settings = args.settings
    given: dict[ArtifactKind, Path | None] = {
        "manifest": args.manifest,
        "catalog": args.catalog,
        "run_results": args.run_results,
        "sources": args.sources,
    }
    files = {kind: path for kind, path in given.items() if path is not None}
    if args.from_repo and files:
        raise BadInputError("--from-repo produces the artifacts itself; do not pass files with it")
    if not args.from_repo and "manifest" not in files:
        raise BadInputError("give --manifest FILE (and optionally --catalog, --run-results, --sources) or --from-repo")

    async def work(runtime: Runtime) -> IngestionOutcome:
        if not args.from_repo:
            return await ingest_files(runtime, tenant, project, files, settings)
        from services.demo.build import generate_artifacts  # noqa: PLC0415 - imports dbt tooling

        store = runtime.store.for_tenant(tenant)
        state = await load_project(store, project)
        if state is None:
            raise BadInputError(f"project {project!r} not found")
        if state.repository.kind != "local":
            raise BadInputError("--from-repo supports local repositories for now (git checkout comes with the runner)")
        output = await _parse_profile(store, project, args.env)
        with tempfile.TemporaryDirectory(prefix="lockgate-parse-") as out:
            produced = await asyncio.to_thread(
                generate_artifacts,
                Path(state.repository.location),
                Path(out),
                commands=("parse",),
                profile_output=output,
            )
            if produced.manifest is None:
                raise BadInputError("dbt parse wrote no manifest.json")
            return await ingest_files(runtime, tenant, project, {"manifest": produced.manifest}, settings)

    outcome = _run(args, work)
    if args.json:
        _emit(outcome)
        return
    verb = "unchanged (same artifacts)" if outcome.deduplicated else f"graph version {outcome.graph_version}"
    _say(
        f"{project}: {verb}: {outcome.nodes} nodes, {outcome.edges} edges; +{outcome.added} ~{outcome.changed} "
        f"-{outcome.removed} renamed {outcome.renamed}; {outcome.events} events in {outcome.elapsed_ms:.0f} ms"
    )
    for warning in outcome.warnings:
        _say(f"warning: {warning}")


class GraphSummary(msgspec.Struct, frozen=True, kw_only=True):
    version: GraphVersionView
    resource_types: dict[str, int]


def cmd_graph(args: argparse.Namespace) -> None:
    tenant, project = _tenant(args), check_id("project", args.project_id)

    async def work(runtime: Runtime) -> tuple[GraphSummary, list[Any]]:
        model = graph_read_model(runtime.store)
        await model.catch_up()
        row = await model.resolve_version(tenant, project, args.version)
        nodes = await queries.nodes(model.db, tenant, project, row.graph_version)
        counts: dict[str, int] = {}
        for n in nodes:
            counts[n.node.resource_type] = counts.get(n.node.resource_type, 0) + 1
        return GraphSummary(version=row, resource_types=dict(sorted(counts.items()))), nodes

    summary, nodes = _run(args, work)
    if args.json:
        _emit({"summary": summary, "nodes": [{"node_uuid": n.node_uuid, **msgspec.to_builtins(n.node)} for n in nodes]})
        return
    v = summary.version
    _say(
        f"{project} graph version {v.graph_version} (dbt {v.dbt_version}, {v.adapter_type}): "
        f"{v.nodes} nodes, {v.edges} edges"
    )
    _table([(kind, str(count)) for kind, count in summary.resource_types.items()], ("RESOURCE_TYPE", "COUNT"))


def add_graph_commands(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    ingest = sub.add_parser("ingest", parents=[common], help="ingest dbt artifacts into a project")
    ingest.add_argument("project_id")
    ingest.add_argument("--manifest", type=_file, help="manifest.json")
    ingest.add_argument("--catalog", type=_file, help="catalog.json (dbt docs generate)")
    ingest.add_argument("--run-results", type=_file, help="run_results.json")
    ingest.add_argument("--sources", type=_file, help="sources.json (dbt source freshness)")
    ingest.add_argument(
        "--from-repo", action="store_true", help="run 'dbt parse' in a temporary copy of the project's repository"
    )
    ingest.add_argument("--env", help="with --from-repo: parse with this environment's adapter and target")
    ingest.set_defaults(func=cmd_ingest)

    graph = sub.add_parser("graph", parents=[common], help="show a project's graph")
    graph.add_argument("project_id")
    graph.add_argument("--version", type=int, help="graph version (default: the latest)")
    graph.set_defaults(func=cmd_graph)

    demo = sub.add_parser("demo", parents=[common], help="set up the demo project (idempotent): build it, ingest it")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> None:
    from services.demo.setup import setup_demo  # noqa: PLC0415 - imports dbt tooling

    tenant = _tenant(args)

    async def work(runtime: Runtime) -> Any:
        return await setup_demo(runtime, tenant)

    outcome = _run(args, work)
    if args.json:
        _emit(outcome)
        return
    for item in outcome.created:
        _say(f"created {item}")
    ingestion = outcome.ingestion
    source = "built with dbt" if outcome.built else "reused the previous dbt build"
    state = "unchanged" if ingestion.deduplicated else f"graph version {ingestion.graph_version}"
    _say(f"demo: {source}; {state}: {ingestion.nodes} nodes, {ingestion.edges} edges")
    run = outcome.first_run
    if run is not None:
        detail = f" ({run.reason}: {run.message})" if run.reason else (f" ({run.message})" if run.message else "")
        _say(f"demo: first run {run.run_id} in dev: {run.status}{detail}")
