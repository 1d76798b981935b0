"""One ingestion = one command: store the artifacts, normalise them, diff against the project's current
graph, and append what changed to ``graph-<project>`` in one transaction (``contracts.events.graph``).

Order of work, cheapest refusal first: the project must exist and be active; every artifact is hashed;
if the hashes equal the last ingestion's, nothing is appended (idempotent on content). Only then are the
artifacts decoded and checked (schema version, cycles, dangling dependencies, the dbt project the Lockgate
project is bound to), stored content-addressed, diffed, and the events appended with the stream version
read at the start as the expected version, so two concurrent ingestions of one project cannot both win.
A failure before the append leaves the event store untouched (objects already stored are harmless:
content-addressed and unreferenced).

Artifacts are read through ``mmap`` (``_Mapped``), and stored from their files in worker threads while the
manifest is decoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mmap
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import ExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from contracts.api.graph import IngestionOutcome
from contracts.base import Event
from contracts.envelope import NewEvent, Scope
from contracts.events.graph import ArtifactsIngested, GraphVersionCreated, StoredArtifact
from contracts.graph import ArtifactInfo, LogicalGraph
from contracts.graph_diff import GraphDiff
from contracts.ids import StreamId, new_uuid, stream_id
from services.ingestion import artifacts
from services.ingestion.diff import diff_graphs
from services.ingestion.events import catalog_events, diff_events, freshness_events, run_results_events
from services.ingestion.identity import assign_identities
from services.ingestion.rebuild import rebuild_snapshot
from services.ingestion.snapshots import SNAPSHOT_KIND, GraphSnapshot, SnapshotCache, encode_snapshot
from services.shared.commands import CommandContext
from services.shared.dag import Dag
from services.shared.errors import (
    ArchivedError,
    ArtifactError,
    CommandRejectedError,
    ContractViolationError,
    NotFoundError,
)
from services.shared.eventstore.port import TenantEventStore
from services.shared.objectstore.port import ObjectCorruptedError, StoredObject, TenantObjectStore
from services.tenancy.handlers import load_project
from services.tenancy.rules import check_id

log = logging.getLogger(__name__)

ArtifactKind = Literal["manifest", "catalog", "run_results", "sources"]
KINDS: tuple[ArtifactKind, ...] = ("manifest", "catalog", "run_results", "sources")

Buffer = memoryview | bytes


def graph_stream(project_id: str) -> StreamId:
    return stream_id("graph", check_id("project", project_id))


class _Mapped:
    """A file's bytes through ``mmap``: hashing and decoding a 300 MB manifest never copies it into the heap.
    ``drop`` gives the pages back once the file has been decoded (they would otherwise count as resident)."""

    def __init__(self, mapped: mmap.mmap | None) -> None:
        self._mmap = mapped
        self.view: Buffer = memoryview(mapped) if mapped is not None else b""

    def drop(self) -> None:
        if self._mmap is not None:
            self._mmap.madvise(mmap.MADV_DONTNEED)


@contextmanager
def _mapped(path: Path) -> Iterator[_Mapped]:
    with path.open("rb") as handle:
        if path.stat().st_size == 0:  # an empty file cannot be mapped
            yield _Mapped(None)
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            file = _Mapped(mapped)
            try:
                yield file
            finally:
                if isinstance(file.view, memoryview):
                    file.view.release()


@asynccontextmanager
async def _stored_in_background(
    objects: TenantObjectStore, files: Mapping[ArtifactKind, Path]
) -> AsyncIterator[dict[str, asyncio.Task[StoredObject]]]:
    """Store the artifact files (hashing and copying in worker threads) while the manifest is decoded.

    From the files, not the mapped views: a worker thread must never hold a view of a mapping that the
    ingestion closes. Tasks still running when the ingestion fails are cancelled and awaited.
    """
    tasks: dict[str, asyncio.Task[StoredObject]] = {
        kind: asyncio.create_task(objects.put_file(kind, path, content_type="application/json"))
        for kind, path in files.items()
    }
    try:
        yield tasks
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


class _Head(msgspec.Struct, frozen=True, kw_only=True):
    """Where the project's graph stream stands: its version and its last ingestion record."""

    last: ArtifactsIngested | None
    stream_version: int


async def _head(store: TenantEventStore, stream: str) -> _Head:
    version = await store.stream_version(stream)
    if version == 0:
        return _Head(last=None, stream_version=0)
    events = await store.read_stream(stream, after_version=version - 1)
    last = events[-1].payload if events else None
    if not isinstance(last, ArtifactsIngested):
        raise CommandRejectedError(f"stream {stream!r} does not end with an ingestion record", stream_id=stream)
    return _Head(last=last, stream_version=version)


class _Decoded(msgspec.Struct, kw_only=True):
    graph: LogicalGraph
    code: bytes | None
    infos: dict[str, ArtifactInfo]
    warnings: list[str]


def _decode_graph(data: Mapping[str, _Mapped], prior: GraphSnapshot | None, project_id: str) -> _Decoded:
    """The new graph: the manifest (or the prior graph when only other artifacts came) plus the catalog."""
    infos: dict[str, ArtifactInfo] = {}
    warnings: list[str] = []
    code: bytes | None = None
    if "manifest" in data:
        parsed = artifacts.read_manifest(data["manifest"].view)
        data["manifest"].drop()  # nothing decoded points into the file (read_manifest's contract)
        graph, code = parsed.graph, parsed.code
        infos["manifest"] = graph.info
        warnings += parsed.warnings
        bound = prior.graph.info.project_id if prior is not None else None
        if bound and graph.info.project_id and bound != graph.info.project_id:
            raise ArtifactError(
                f"manifest belongs to dbt project id {graph.info.project_id!r} ({graph.info.project_name!r}), "
                f"but project {project_id!r} ingests dbt project id {bound!r}",
                expected=bound,
                actual=graph.info.project_id,
            )
        if prior is not None and "catalog" not in data:
            graph = msgspec.structs.replace(graph, catalog=prior.graph.catalog)
    elif prior is not None:
        graph = prior.graph
    else:
        raise ArtifactError("the first ingestion of a project needs a manifest")
    if "catalog" in data:
        catalog = artifacts.read_catalog(data["catalog"].view)
        infos["catalog"] = catalog.info
        warnings += catalog.warnings
        graph = msgspec.structs.replace(graph, catalog=catalog.entries)
        unknown = sorted(uid for uid in graph.catalog if uid not in graph.nodes)
        if unknown:
            warnings.append(f"catalog names {len(unknown)} node(s) the manifest lacks (kept), e.g. {unknown[0]!r}")
    return _Decoded(graph=graph, code=code, infos=infos, warnings=warnings)


def _edge_count(graph: LogicalGraph) -> int:
    """Edges of the graph; a dependency cycle is an ingestion error that names the cycle."""
    dag = Dag({uid: node.depends_on_nodes for uid, node in graph.nodes.items()})
    cycle = dag.find_cycle()
    if cycle is not None:
        raise ArtifactError(f"manifest has a dependency cycle: {' -> '.join(cycle)}", cycle=cycle)
    return dag.edge_count


def _graph_changed(graph: LogicalGraph, prior: GraphSnapshot | None, diff: GraphDiff) -> bool:
    if prior is None or not diff.is_empty:
        return True
    old = prior.graph
    return (
        graph.catalog != old.catalog
        or graph.groups != old.groups
        or graph.selectors != old.selectors
        or graph.disabled.keys() != old.disabled.keys()
    )


class _History(msgspec.Struct, kw_only=True):
    events: list[Event]
    infos: dict[str, ArtifactInfo]
    warnings: list[str]
    unknown: int


def _history(
    project_id: str, version: int, data: Mapping[str, _Mapped], hashes: Mapping[str, str], graph: LogicalGraph
) -> _History:
    """Run history (run_results) and source freshness (sources.json) against the graph at ``version``."""
    history = _History(events=[], infos={}, warnings=[], unknown=0)
    if "run_results" in data:
        results = artifacts.read_run_results(data["run_results"].view)
        history.warnings += results.warnings
        history.infos["run_results"] = results.info
        invocation = results.info.invocation_id or hashes["run_results"]
        events, missing = run_results_events(project_id, version, results, invocation, graph.nodes)
        history.events += events
        history.unknown += missing
    if "sources" in data:
        freshness = artifacts.read_sources(data["sources"].view)
        history.warnings += freshness.warnings
        history.infos["sources"] = freshness.info
        invocation = freshness.info.invocation_id or hashes["sources"]
        events, missing = freshness_events(project_id, version, freshness, invocation, graph.nodes)
        history.events += events
        history.unknown += missing
    if history.unknown:
        history.warnings.append(f"{history.unknown} result(s) name nodes the graph does not have (kept, flagged)")
    return history


def _prior_hash(last: ArtifactsIngested | None, kind: str) -> str | None:
    if last is None:
        return None
    return next((a.sha256 for a in last.artifacts if a.info.kind == kind), None)


class Ingestion:
    """The ingestion command service of one process (it owns the snapshot cache)."""

    def __init__(self, cache: SnapshotCache | None = None) -> None:
        self._cache = cache or SnapshotCache()

    async def ingest(
        self,
        store: TenantEventStore,
        objects: TenantObjectStore,
        project_id: str,
        files: Mapping[ArtifactKind, Path],
        context: CommandContext,
        *,
        now: datetime | None = None,
    ) -> IngestionOutcome:
        started = time.perf_counter()
        unknown_kinds = set(files) - set(KINDS)
        if unknown_kinds:
            raise ArtifactError(f"unknown artifact kind(s): {', '.join(sorted(unknown_kinds))}")
        if not files:
            raise ArtifactError("nothing to ingest: give at least a manifest")
        project = await load_project(store, project_id)
        if project is None:
            raise NotFoundError(f"project {project_id!r} not found", project_id=project_id)
        if project.status == "archived":
            raise ArchivedError(f"project {project_id!r} is archived", project_id=project_id)
        stream = graph_stream(project_id)
        if context.idempotency_key is not None and await store.find_command(context.idempotency_key) is not None:
            return _unchanged(project_id, await _head(store, stream), started)

        with ExitStack() as stack:
            data: dict[str, _Mapped] = {kind: stack.enter_context(_mapped(path)) for kind, path in files.items()}
            hashes: dict[str, str] = {kind: hashlib.sha256(file.view).hexdigest() for kind, file in data.items()}
            head = await _head(store, stream)
            if head.last is not None and {a.info.kind: a.sha256 for a in head.last.artifacts} == hashes:
                return _unchanged(project_id, head, started)
            prior = await self._prior(store, objects, stream, project_id, head.last) if head.last else None
            async with _stored_in_background(objects, files) as storing:
                events, outcome = await self._record(
                    objects=objects,
                    project_id=project_id,
                    storing=storing,
                    data=data,
                    hashes=hashes,
                    head=head,
                    prior=prior,
                )
        scope = Scope(tenant_id=store.tenant_id, org_id=project.org_id, project_id=project_id)
        at = now or datetime.now(UTC)
        result = await store.append(
            stream,
            [NewEvent(event_id=new_uuid(), payload=event, occurred_at=at) for event in events],
            expected_version=head.stream_version,
            metadata=context.metadata(scope),
        )
        return msgspec.structs.replace(
            outcome,
            deduplicated=result.deduplicated,
            events=0 if result.deduplicated else len(events),
            stream_version=result.last_version,
            global_position=result.positions[-1].global_position if result.positions else None,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def current_graph(
        self, store: TenantEventStore, objects: TenantObjectStore, project_id: str
    ) -> GraphSnapshot | None:
        """The project's graph now (None before its first ingestion): what planning selects from."""
        stream = graph_stream(project_id)
        head = await _head(store, stream)
        return await self._prior(store, objects, stream, project_id, head.last) if head.last else None

    async def graph_at(
        self,
        store: TenantEventStore,
        objects: TenantObjectStore,
        project_id: str,
        graph_version: int,
        snapshot_key: str,
    ) -> GraphSnapshot:
        """An earlier graph version (a ``state:`` reference): its snapshot, or a fold of the events up to it."""
        try:
            return await self._cache.load(objects, snapshot_key)
        except (NotFoundError, ObjectCorruptedError, ContractViolationError) as exc:
            log.warning(
                "graph snapshot %s unusable (%s); rebuilding version %s from the events",
                snapshot_key,
                exc,
                graph_version,
            )
        snapshot = await rebuild_snapshot(store, graph_stream(project_id), project_id, graph_version=graph_version)
        self._cache.remember(objects.tenant_id, snapshot_key, snapshot)
        return snapshot

    async def _prior(
        self, store: TenantEventStore, objects: TenantObjectStore, stream: str, project_id: str, last: ArtifactsIngested
    ) -> GraphSnapshot:
        """The graph the project is at: its snapshot, or, if that is lost or damaged, a fold of its events."""
        key = last.snapshot_key
        try:
            return await self._cache.load(objects, key)
        except (NotFoundError, ObjectCorruptedError, ContractViolationError) as exc:
            log.warning("graph snapshot %s of %s unusable (%s); rebuilding it from the events", key, stream, exc)
        snapshot = await rebuild_snapshot(store, stream, project_id)
        if snapshot.graph_version != last.graph_version:
            raise CommandRejectedError(
                f"rebuilt graph of {stream!r} is at version {snapshot.graph_version}, "
                f"but the stream says {last.graph_version}",
                stream_id=stream,
            )
        self._cache.remember(objects.tenant_id, key, snapshot)
        return snapshot

    async def _record(
        self,
        *,
        objects: TenantObjectStore,
        project_id: str,
        storing: Mapping[str, asyncio.Task[StoredObject]],
        data: Mapping[str, _Mapped],
        hashes: Mapping[str, str],
        head: _Head,
        prior: GraphSnapshot | None,
    ) -> tuple[list[Event], IngestionOutcome]:
        """Decode, check, diff and store; return the events to append and the outcome to report."""
        decoded = _decode_graph(data, prior, project_id)
        graph, warnings = decoded.graph, decoded.warnings
        edges = _edge_count(graph)
        identities = assign_identities(prior.graph if prior else None, prior.identities if prior else {}, graph)
        diff = diff_graphs(prior.graph if prior else None, graph, identities)
        prior_version = head.last.graph_version if head.last else 0
        new_version = _graph_changed(graph, prior, diff)
        version = prior_version + 1 if new_version else prior_version

        events: list[Event] = []
        if new_version:
            snapshot = GraphSnapshot(
                project_id=project_id, graph_version=version, graph=graph, identities=identities.ids
            )
            snapshot_obj, code_obj = await asyncio.gather(
                objects.put(SNAPSHOT_KIND, encode_snapshot(snapshot), content_type="application/msgpack"),
                objects.put("code", decoded.code or b"{}", content_type="application/json"),
            )
            decoded.code = None  # stored: let it go before the events are encoded
            self._cache.remember(objects.tenant_id, snapshot_obj.key, snapshot)
            snapshot_key = snapshot_obj.key
            events += diff_events(project_id, version, snapshot, diff, prior)
            events += catalog_events(project_id, version, graph.catalog, prior.graph.catalog if prior else {})
            events.append(
                GraphVersionCreated(
                    project_id=project_id,
                    graph_version=version,
                    previous_version=prior_version,
                    manifest=graph.info,
                    manifest_sha256=hashes.get("manifest") or _prior_hash(head.last, "manifest") or "",
                    catalog_sha256=hashes.get("catalog") or _prior_hash(head.last, "catalog"),
                    nodes=len(graph.nodes),
                    edges=edges,
                    added=len(diff.added),
                    changed=len(diff.changed),
                    modified=sum(1 for c in diff.changed if c.modified),
                    removed=len(diff.removed),
                    renamed=len(diff.renamed),
                    macros_changed=len(diff.macros_added) + len(diff.macros_changed) + len(diff.macros_removed),
                    groups=tuple(graph.groups[k] for k in sorted(graph.groups)),
                    selectors=graph.selectors,
                    disabled=tuple(sorted(graph.disabled)),
                    snapshot_key=snapshot_key,
                    code_key=code_obj.key,
                )
            )
        elif head.last is not None:
            snapshot_key = head.last.snapshot_key
        else:  # pragma: no cover - a first ingestion always creates a version
            raise AssertionError

        infos = dict(decoded.infos)
        history = _history(project_id, version, data, hashes, graph)
        events += history.events
        infos.update(history.infos)
        warnings += history.warnings
        stored = []
        for kind in KINDS:
            if kind in storing:
                obj = await storing[kind]
                if obj.sha256 != hashes[kind]:
                    raise ArtifactError(f"the {kind} file changed while it was being ingested")
                stored.append(StoredArtifact(sha256=obj.sha256, size=obj.size, key=obj.key, info=infos[kind]))
        events.append(
            ArtifactsIngested(
                project_id=project_id,
                ingestion_id=new_uuid(),
                artifacts=tuple(stored),
                graph_version=version,
                snapshot_key=snapshot_key,
                new_version=new_version,
                nodes=len(graph.nodes),
                edges=edges,
                warnings=tuple(warnings),
                unknown_nodes=history.unknown,
            )
        )
        outcome = IngestionOutcome(
            project_id=project_id,
            graph_version=version,
            new_version=new_version,
            deduplicated=False,
            nodes=len(graph.nodes),
            edges=edges,
            added=len(diff.added),
            changed=len(diff.changed),
            modified=sum(1 for c in diff.changed if c.modified),
            removed=len(diff.removed),
            renamed=len(diff.renamed),
            warnings=tuple(warnings),
            unknown_nodes=history.unknown,
        )
        return events, outcome


def _unchanged(project_id: str, head: _Head, started: float) -> IngestionOutcome:
    """The outcome of an ingestion that appends nothing: the same artifacts, or a retried command."""
    last = head.last
    return IngestionOutcome(
        project_id=project_id,
        graph_version=last.graph_version if last else 0,
        new_version=False,
        deduplicated=True,
        nodes=last.nodes if last else 0,
        edges=last.edges if last else 0,
        stream_version=head.stream_version,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )
