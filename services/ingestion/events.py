"""Turning an ingestion's outcome into graph events (pure functions, no I/O).

Every list of records is cut with ``chunked`` so that no event outgrows one NATS message; each chunk of
run history flags its own results that name nodes the graph lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from contracts.base import Event
from contracts.events.graph import (
    CatalogRecorded,
    ChangedNode,
    MacrosChanged,
    NodeRecord,
    NodesAdded,
    NodesChanged,
    NodesRemoved,
    NodesRenamed,
    RemovedNode,
    RunResultsRecorded,
    SourceFreshnessRecorded,
)
from contracts.graph import CatalogEntry, FreshnessResults, NodeResult, RunResults, SourceFreshness
from contracts.graph_diff import GraphDiff
from services.ingestion.chunks import chunked
from services.ingestion.snapshots import GraphSnapshot


def diff_events(
    project_id: str, version: int, snapshot: GraphSnapshot, diff: GraphDiff, prior: GraphSnapshot | None
) -> list[Event]:
    """The graph change of one version: added, renamed, changed and removed nodes, then macros."""
    nodes, ids = snapshot.graph.nodes, snapshot.identities
    events: list[Event] = []
    added = [NodeRecord(node_uuid=ids[uid], node=nodes[uid]) for uid in diff.added]
    events += [NodesAdded(project_id=project_id, graph_version=version, nodes=part) for part in chunked(added)]
    if diff.renamed:
        records = tuple(NodeRecord(node_uuid=r.node_uuid, node=nodes[r.new_unique_id]) for r in diff.renamed)
        events.append(NodesRenamed(project_id=project_id, graph_version=version, renames=diff.renamed, nodes=records))
    changed = [
        ChangedNode(node_uuid=c.node_uuid, aspects=c.aspects, modified=c.modified, node=nodes[c.unique_id])
        for c in diff.changed
    ]
    events += [NodesChanged(project_id=project_id, graph_version=version, nodes=part) for part in chunked(changed)]
    if diff.removed and prior is not None:
        removed = [RemovedNode(unique_id=uid, node_uuid=prior.identities[uid]) for uid in diff.removed]
        events += [NodesRemoved(project_id=project_id, graph_version=version, nodes=part) for part in chunked(removed)]
    macros = snapshot.graph.macros
    upserted = [macros[uid] for uid in sorted({*diff.macros_added, *diff.macros_changed})]
    if upserted or diff.macros_removed:
        parts = list(chunked(upserted)) or [()]
        events += [
            MacrosChanged(
                project_id=project_id,
                graph_version=version,
                upserted=part,
                removed=diff.macros_removed if i == 0 else (),
            )
            for i, part in enumerate(parts)
        ]
    return events


def catalog_events(
    project_id: str, version: int, new: Mapping[str, CatalogEntry], old: Mapping[str, CatalogEntry]
) -> list[Event]:
    """Catalog entries that are new or differ from the previous version's, and the ones that are gone."""
    entries = [entry for uid, entry in sorted(new.items()) if old.get(uid) != entry]
    removed = tuple(sorted(uid for uid in old if uid not in new))
    if not entries and not removed:
        return []
    parts = list(chunked(entries)) or [()]
    return [
        CatalogRecorded(project_id=project_id, graph_version=version, entries=part, removed=removed if i == 0 else ())
        for i, part in enumerate(parts)
    ]


def _flagged(part: Sequence[NodeResult | SourceFreshness], missing: set[str]) -> tuple[str, ...]:
    return tuple(sorted({r.unique_id for r in part} & missing))


def run_results_events(
    project_id: str, version: int, results: RunResults, invocation_id: str, known: Mapping[str, object]
) -> tuple[list[Event], int]:
    """Run history of one invocation, and how many of its results name nodes the graph lacks."""
    missing = {r.unique_id for r in results.results} - known.keys()
    parts = list(chunked(list(results.results))) or [()]
    events: list[Event] = [
        RunResultsRecorded(
            project_id=project_id,
            invocation_id=invocation_id,
            info=results.info,
            graph_version=version,
            elapsed_time=results.elapsed_time,
            results=part,
            unknown_nodes=_flagged(part, missing),
        )
        for part in parts
    ]
    return events, len(missing)


def freshness_events(
    project_id: str, version: int, results: FreshnessResults, invocation_id: str, known: Mapping[str, object]
) -> tuple[list[Event], int]:
    missing = {r.unique_id for r in results.results} - known.keys()
    parts = list(chunked(list(results.results))) or [()]
    events: list[Event] = [
        SourceFreshnessRecorded(
            project_id=project_id,
            invocation_id=invocation_id,
            info=results.info,
            graph_version=version,
            results=part,
            unknown_nodes=_flagged(part, missing),
        )
        for part in parts
    ]
    return events, len(missing)
