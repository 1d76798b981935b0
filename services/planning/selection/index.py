"""A LogicalGraph pre-indexed for selection: the graph dbt selects over, and lookups by fqn, tag, path...

Built once per graph version (``Selector``), so that a selection costs dictionary lookups and one walk of
the part of the graph it touches, not a scan of every node.

The graph is dbt's ``NodeSelector.graph``: every enabled resource, with an edge from each parent that exists
to its child (``depends_on.nodes``); ``dbt ls`` adds no test edges (only ``dbt build`` does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import PurePosixPath
from typing import Final

from contracts.graph import GraphNode, LogicalGraph

__all__ = ["NOT_PARSED_TYPES", "WILDCARD_CHARS", "GraphIndex", "has_wildcard", "match_vocabulary"]

NOT_PARSED_TYPES: Final = frozenset(
    {"source", "exposure", "metric", "semantic_model", "saved_query", "unit_test", "function"}
)
"""Resource types dbt keeps outside ``manifest.nodes``; every other type is a "parsed node" there."""

WILDCARD_CHARS: Final = ("*", "?", "[", "]")
"""What makes dbt treat an fqn selector part as a pattern (``is_selected_node``)."""
_FNMATCH_SPECIAL: Final = ("*", "?", "[")


def has_wildcard(pattern: str) -> bool:
    """Whether ``fnmatch(x, pattern)`` can be true for some ``x != pattern``."""
    return any(ch in pattern for ch in _FNMATCH_SPECIAL)


def match_vocabulary(index: dict[str, set[str]], pattern: str) -> set[str]:
    """The union of ``index[key]`` over every key that ``fnmatch``es ``pattern``."""
    if not has_wildcard(pattern):
        return set(index.get(pattern, ()))
    found: set[str] = set()
    for key, uids in index.items():
        if fnmatch(key, pattern):
            found |= uids
    return found


def _flatten(fqn: Iterable[str]) -> tuple[str, ...]:
    return tuple(item for segment in fqn for item in segment.split("."))


def node_tags(node: GraphNode) -> tuple[str, ...]:
    """The tags dbt's ``tag:`` method reads: semantic models have none; a unit test's are its config's."""
    rtype = node.resource_type
    if rtype == "semantic_model":
        return ()
    if rtype == "unit_test":
        tags = node.config.get("tags")
        if isinstance(tags, str):
            return (tags,)
        if isinstance(tags, list):
            return tuple(t for t in tags if isinstance(t, str))
    return node.tags


class FqnEntry:
    """A node that the fqn method can match (every type but sources), with its flattened fqn."""

    __slots__ = ("flat", "fqn", "joins", "leaf", "unique_id", "unscoped_flat", "unscoped_joins", "versioned")

    def __init__(self, node: GraphNode) -> None:
        self.unique_id = node.unique_id
        self.fqn = node.fqn
        self.flat = _flatten(node.fqn)
        self.unscoped_flat = _flatten(node.fqn[1:])
        self.versioned = node.resource_type == "model" and node.version is not None
        self.leaf = node.fqn[-2] if self.versioned and len(node.fqn) >= 2 else node.fqn[-1]
        """The name a bare selector is compared with (a versioned model's name, not its version)."""
        self.joins = tuple(".".join(self.flat[i:]) for i in range(len(self.flat)))
        """``".".join(flat[i:])`` for every i: what a wildcard from part i on is matched against."""
        self.unscoped_joins = tuple(".".join(self.unscoped_flat[i:]) for i in range(len(self.unscoped_flat)))


class GraphIndex:
    """Selection indexes over one graph. Every set holds unique_ids of enabled resources only."""

    def __init__(self, graph: LogicalGraph) -> None:
        self.graph = graph
        self.project_name = graph.info.project_name
        nodes = {uid: n for uid, n in graph.nodes.items() if n.config.get("enabled", True) is not False}
        self.nodes: dict[str, GraphNode] = nodes
        self.all: frozenset[str] = frozenset(nodes)
        self.sources_everywhere: frozenset[str] = frozenset(
            uid for uid, n in graph.nodes.items() if n.resource_type == "source"
        )
        """Every source of the manifest, enabled or not (dbt's ``buildable`` mode reads ``manifest.sources``)."""

        by_type: dict[str, set[str]] = defaultdict(set)
        by_package: dict[str, set[str]] = defaultdict(set)
        tags: dict[str, set[str]] = defaultdict(set)
        file_names: dict[str, set[str]] = defaultdict(set)
        children: dict[str, list[str]] = defaultdict(list)
        parents: dict[str, list[str]] = {}
        for uid, node in nodes.items():
            by_type[node.resource_type].add(uid)
            by_package[node.package_name].add(uid)
            for tag in node_tags(node):
                tags[tag].add(uid)
            ofp = PurePosixPath(node.original_file_path)
            file_names[ofp.name].add(uid)
            file_names[ofp.stem].add(uid)
            ps = [p for p in dict.fromkeys(node.depends_on_nodes) if p in nodes]
            parents[uid] = ps
            for p in ps:
                children[p].append(uid)
        self.by_type = dict(by_type)
        self.by_package = dict(by_package)
        self.tags = dict(tags)
        self.file_names = dict(file_names)
        self.parents: dict[str, list[str]] = parents
        self.children: dict[str, list[str]] = dict(children)
        self.parsed: frozenset[str] = frozenset(
            uid for uid, n in nodes.items() if n.resource_type not in NOT_PARSED_TYPES
        )
        self.test_children: dict[str, list[str]] = {}
        """Per node, its children that are tests or unit tests (what indirect selection looks at)."""
        for uid, kids in self.children.items():
            tests = [k for k in kids if nodes[k].resource_type in ("test", "unit_test")]
            if tests:
                self.test_children[uid] = tests
        self.type_of: dict[str, str] = {uid: n.resource_type for uid, n in nodes.items()}
        self.configurable: tuple[tuple[str, dict[str, object]], ...] = tuple(
            (uid, n.config) for uid, n in nodes.items() if uid in self.parsed or n.resource_type == "source"
        )
        """Where ``config.`` looks: parsed nodes and sources, with their configs."""
        self._fqn: tuple[FqnEntry, ...] | None = None
        self._fqn_keys: dict[str, set[str]] | None = None
        self._versioned_keys: dict[str, set[str]] | None = None
        self._paths: _PathIndex | None = None
        self.fqn_keys()
        self._paths = _PathIndex(self)

    def of_types(self, *types: str) -> set[str]:
        found: set[str] = set()
        for rtype in types:
            found |= self.by_type.get(rtype, set())
        return found

    # ------------------------------------------------------------------------------------------------ fqn

    @property
    def fqn_entries(self) -> tuple[FqnEntry, ...]:
        if self._fqn is None:
            self._fqn = tuple(
                FqnEntry(n) for n in self.nodes.values() if n.resource_type != "source" and len(n.fqn) >= 1
            )
        return self._fqn

    def fqn_keys(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """For selectors without wildcards: ``(keys, versioned)`` where ``keys`` maps a node's leaf name and
        every dotted prefix of its flattened fqn (with and without the package) to the node, and
        ``versioned`` maps ``<name>_<version>`` of versioned models."""
        if self._fqn_keys is None or self._versioned_keys is None:
            keys: dict[str, set[str]] = defaultdict(set)
            versioned: dict[str, set[str]] = defaultdict(set)
            for entry in self.fqn_entries:
                uid, fqn = entry.unique_id, entry.fqn
                if entry.versioned and len(fqn) >= 2:
                    keys[fqn[-2]].add(uid)
                    versioned["_".join(fqn[-2:])].add(uid)
                else:
                    keys[fqn[-1]].add(uid)
                for flat in (entry.flat, entry.unscoped_flat if len(fqn) >= 2 else ()):
                    for end in range(1, len(flat) + 1):
                        keys[".".join(flat[:end])].add(uid)
            self._fqn_keys, self._versioned_keys = dict(keys), dict(versioned)
        return self._fqn_keys, self._versioned_keys

    # ------------------------------------------------------------------------------------------------ paths

    @property
    def paths(self) -> _PathIndex:
        if self._paths is None:
            self._paths = _PathIndex(self)
        return self._paths


class _PathIndex:
    """dbt's ``path:`` globs the project folder (``Path.glob`` relative to the project root). Lockgate has no
    folder, so the folder is the one the graph implies: the files of the root project's resources (their
    ``original_file_path`` and YAML ``patch_path``) and every folder above them."""

    def __init__(self, index: GraphIndex) -> None:
        project = index.project_name
        entries: dict[tuple[str, ...], set[tuple[str, bool]]] = defaultdict(set)
        selects: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for uid, node in index.nodes.items():
            files = []
            if node.original_file_path:
                ofp = PurePosixPath(node.original_file_path).parts
                files.append(ofp)
                selects[ofp].add(uid)
                for end in range(len(ofp)):
                    selects[ofp[:end]].add(uid)  # every parent folder, down to the root ("." = ())
            else:
                selects[()].add(uid)
            patch = node.patch_path
            if patch and "://" in patch:
                yml = PurePosixPath(patch.split("://", 1)[1]).parts
                files.append(yml)
                selects[yml].add(uid)
            if project is not None and node.package_name != project:
                continue  # a package's files are not in the project folder
            for parts in files:
                for end in range(len(parts)):
                    entries[parts[:end]].add((parts[end], end < len(parts) - 1))
        self.entries = dict(entries)
        self.selects = dict(selects)

    def glob(self, parts: tuple[str, ...]) -> set[tuple[str, ...]]:
        """The known paths that ``Path.glob`` (Python 3.11) would yield for a pattern of ``parts``."""
        current: set[tuple[str, ...]] = {()}
        last = len(parts) - 1
        for i, part in enumerate(parts):
            found: set[tuple[str, ...]] = set()
            if part == "**":
                for base in current:
                    found.add(base)
                    found |= self._dirs_below(base)
            else:
                wildcard = has_wildcard(part)
                for base in current:
                    for name, is_dir in self.entries.get(base, ()):
                        if (i < last and not is_dir) or name in (".", ".."):
                            continue
                        if fnmatch(name, part) if wildcard else name == part:
                            found.add((*base, name))
            current = found
            if not current:
                break
        return current

    def _dirs_below(self, base: tuple[str, ...]) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        stack = [base]
        while stack:
            here = stack.pop()
            for name, is_dir in self.entries.get(here, ()):
                if is_dir:
                    child = (*here, name)
                    if child not in found:
                        found.add(child)
                        stack.append(child)
        return found
