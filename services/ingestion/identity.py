"""Stable node identity across graph versions: a node keeps its ``node_uuid`` when dbt renames it.

dbt identifies a node by its ``unique_id`` (``model.<package>.<name>``), which changes when a file is renamed.
Lockgate gives every node a ``node_uuid`` that survives such renames, so history (runs, costs, approvals)
follows the node. The rules, in order:

1. A ``unique_id`` that already has an identity keeps it.
2. A node whose ``unique_id`` disappeared and a new node are the *same node renamed* when they have the same
   ``resource_type``, the same non-empty code fingerprint (``body_hash``, or ``checksum`` when the node has no
   code, as seeds), the same ``column_name`` (tests) and the same parents. Parents are compared by identity,
   not by ``unique_id``: nodes are visited in topological generations, so a parent renamed in the same
   version already carries its old uuid and a renamed chain (parent and child) is recognised.
3. Ambiguity (several disappeared nodes and/or several new nodes with one key) is resolved greedily over all
   candidate pairs ordered by (distance between the two ``original_file_path`` s, old ``unique_id``, new
   ``unique_id``); the distance is the number of path segments outside their common prefix. Nodes left
   without a partner are removed (old) or added (new).
4. Every other node gets a fresh uuid from ``new_uuid`` (UUIDv7 by default).

The result only depends on the inputs (no iteration over unordered sets), so re-ingesting the same graph
gives the same renames, and no two nodes ever share a uuid.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

import msgspec

from contracts.graph import GraphNode, LogicalGraph
from contracts.graph_diff import NodeRename
from contracts.ids import new_uuid as uuid7

__all__ = ["Identities", "assign_identities", "topological_generations", "version_siblings"]


class Identities(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The identity of every node of one graph version, and the renames that preserved one."""

    ids: dict[str, uuid.UUID]
    """unique_id -> node_uuid, for every node of the graph."""
    renames: tuple[NodeRename, ...] = ()
    """Sorted by ``old_unique_id``."""


_Base = tuple[str, str, str | None]
_RenameKey = tuple[str, str, str | None, frozenset[uuid.UUID | str]]


def _fingerprint(node: GraphNode) -> str:
    return node.body_hash or node.checksum


def _path_distance(a: str, b: str) -> int:
    pa, pb = a.split("/"), b.split("/")
    common = 0
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            break
        common += 1
    return len(pa) + len(pb) - 2 * common


def topological_generations(graph: LogicalGraph) -> list[list[str]]:
    """The nodes by generation (a node comes after all of its parents), each generation sorted.

    Parents outside ``graph.nodes`` are ignored; nodes on a cycle (dbt forbids them) form a last generation.
    """
    nodes = graph.nodes
    indegree: dict[str, int] = {}
    children: dict[str, list[str]] = defaultdict(list)
    for uid, node in nodes.items():
        parents = {p for p in node.depends_on_nodes if p in nodes and p != uid}
        indegree[uid] = len(parents)
        for p in parents:
            children[p].append(uid)
    current = sorted(uid for uid, d in indegree.items() if d == 0)
    generations: list[list[str]] = []
    seen = 0
    while current:
        generations.append(current)
        seen += len(current)
        following: list[str] = []
        for uid in current:
            for child in children.get(uid, ()):
                indegree[child] -= 1
                if indegree[child] == 0:
                    following.append(child)
        current = sorted(following)
    if seen < len(nodes):
        generations.append(sorted(uid for uid, d in indegree.items() if d > 0))
    return generations


def assign_identities(
    prior: LogicalGraph | None,
    prior_ids: Mapping[str, uuid.UUID],
    new: LogicalGraph,
    *,
    new_uuid: Callable[[], uuid.UUID] = uuid7,
) -> Identities:
    """Identify every node of ``new``: kept, renamed from a node of ``prior``, or fresh (module docstring)."""
    ids: dict[str, uuid.UUID] = {uid: prior_ids[uid] for uid in new.nodes if uid in prior_ids}
    used: set[uuid.UUID] = set(ids.values())
    gone = _disappeared(prior, prior_ids, new, used) if prior is not None else {}
    gone_bases = {key[:3] for key in gone}

    renames: list[NodeRename] = []
    claimed: set[str] = set()
    for generation in topological_generations(new):
        pending = [uid for uid in generation if uid not in ids]
        groups: dict[_RenameKey, list[str]] = {}
        for uid in pending if gone_bases else ():
            node = new.nodes[uid]
            base: _Base = (node.resource_type, _fingerprint(node), node.column_name)
            if base in gone_bases:
                parents = frozenset(_parent_identity(p, new, ids, prior_ids) for p in node.depends_on_nodes)
                key: _RenameKey = (*base, parents)
                if key in gone:
                    groups.setdefault(key, []).append(uid)
        for key, arrivals in groups.items():
            candidates = [o for o in gone[key] if o not in claimed]
            for old_uid, new_uid in _pair(prior, new, candidates, arrivals):
                claimed.add(old_uid)
                ids[new_uid] = prior_ids[old_uid]
                renames.append(NodeRename(old_unique_id=old_uid, new_unique_id=new_uid, node_uuid=prior_ids[old_uid]))
        for uid in pending:
            if uid not in ids:
                fresh = new_uuid()
                while fresh in used:
                    fresh = new_uuid()
                ids[uid] = fresh
                used.add(fresh)
    renames.sort(key=lambda r: r.old_unique_id)
    return Identities(ids=ids, renames=tuple(renames))


def _disappeared(
    prior: LogicalGraph, prior_ids: Mapping[str, uuid.UUID], new: LogicalGraph, used: set[uuid.UUID]
) -> dict[_RenameKey, list[str]]:
    """The prior nodes that could have been renamed (gone, identified, with code), by their rename key."""
    gone: dict[_RenameKey, list[str]] = defaultdict(list)
    for uid in sorted(prior.nodes):
        if uid in new.nodes or uid not in prior_ids or prior_ids[uid] in used:
            continue
        node = prior.nodes[uid]
        fingerprint = _fingerprint(node)
        if fingerprint:
            parents = frozenset(prior_ids.get(p, p) for p in node.depends_on_nodes)
            gone[(node.resource_type, fingerprint, node.column_name, parents)].append(uid)
    return dict(gone)


def _parent_identity(
    parent: str, new: LogicalGraph, ids: Mapping[str, uuid.UUID], prior_ids: Mapping[str, uuid.UUID]
) -> uuid.UUID | str:
    if parent in new.nodes:
        return ids.get(parent, parent)
    return prior_ids.get(parent, parent)


def _pair(
    prior: LogicalGraph | None, new: LogicalGraph, olds: Iterable[str], arrivals: Iterable[str]
) -> list[tuple[str, str]]:
    olds, arrivals = list(olds), list(arrivals)
    if len(olds) == 1 and len(arrivals) == 1:
        return [(olds[0], arrivals[0])]
    if prior is None:
        return []
    ranked = sorted(
        (_path_distance(prior.nodes[o].original_file_path, new.nodes[a].original_file_path), o, a)
        for o in olds
        for a in arrivals
    )
    taken_old: set[str] = set()
    taken_new: set[str] = set()
    pairs: list[tuple[str, str]] = []
    for _, o, a in ranked:
        if o in taken_old or a in taken_new:
            continue
        taken_old.add(o)
        taken_new.add(a)
        pairs.append((o, a))
    return pairs


def version_siblings(graph: LogicalGraph) -> dict[str, tuple[str, ...]]:
    """For every versioned model, the other versions of the same model (same package and name), sorted."""
    families: dict[tuple[str, str], list[str]] = defaultdict(list)
    for uid, node in graph.nodes.items():
        if node.resource_type == "model" and node.version is not None:
            families[(node.package_name, node.name)].append(uid)
    siblings: dict[str, tuple[str, ...]] = {}
    for members in families.values():
        members.sort()
        for uid in members:
            siblings[uid] = tuple(m for m in members if m != uid)
    return siblings
