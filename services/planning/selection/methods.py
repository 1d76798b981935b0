"""dbt's selection methods (``dbt/graph/selector_methods.py``, dbt-core 1.11) over a ``GraphIndex``.

Each method returns the unique_ids its value matches among the enabled resources, before any graph operator.
Which resource types a method looks at is dbt's, and so are its quirks (kept on purpose, ``dbt ls`` does the
same): ``fqn`` never matches sources; ``tag`` never matches semantic models and reads a unit test's tags from
its config; ``config.<key>`` only looks at "parsed" nodes (models, tests, seeds, snapshots, analyses, hooks)
and sources; ``group`` at parsed nodes and metrics; ``test_type`` accepts any part of ``data``, ``singular``
or ``unit`` (``test_type:sing`` is singular); ``source_status:stale`` selects nothing (dbt only implements
``fresher``); ``path`` globs the folder the graph implies (see ``index._PathIndex``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from fnmatch import fnmatch, translate
from pathlib import PurePosixPath
from typing import Any, Final

import msgspec

from contracts.graph import LogicalGraph, SourceFreshness
from contracts.graph_diff import DBT_SUB_SELECTORS
from services.ingestion.diff import modified_nodes
from services.planning.selection.grammar import Criterion, SelectorSyntaxError
from services.planning.selection.index import WILDCARD_CHARS, FqnEntry, GraphIndex, has_wildcard, match_vocabulary
from services.shared.errors import ContractViolationError

__all__ = ["STATE_SELECTORS", "FreshnessComparison", "MethodContext", "MissingStateError", "search"]

STATE_SELECTORS: Final = (
    "new",
    "old",
    "modified",
    "unmodified",
    *(f"modified.{aspect}" for aspect in DBT_SUB_SELECTORS),
)
_TEST_TYPES: Final = ("generic", "schema")


class MissingStateError(ContractViolationError):
    """A ``state:``, ``result:`` or ``source_status:`` criterion without what it compares against."""

    code = "selection_state_missing"


class FreshnessComparison(msgspec.Struct, frozen=True, kw_only=True):
    """Two ``dbt source freshness`` result sets for ``source_status:``: ``previous`` is the state's
    ``sources.json`` (``--state``), ``current`` the project's latest (``target/sources.json``)."""

    previous: tuple[SourceFreshness, ...]
    current: tuple[SourceFreshness, ...]


class MethodContext:
    """What the state-dependent methods compare against, with the comparisons cached per graph."""

    def __init__(
        self,
        *,
        state: LogicalGraph | None = None,
        results: Mapping[str, str] | None = None,
        freshness: FreshnessComparison | None = None,
    ) -> None:
        self.state = state
        self.results = results
        self.freshness = freshness
        self._modified: dict[str | None, set[str]] = {}

    def modified(self, graph: LogicalGraph, aspect: str | None) -> set[str]:
        if self.state is None:
            raise MissingStateError("a state: selector needs a reference graph (dbt's --state manifest)")
        if aspect not in self._modified:
            self._modified[aspect] = modified_nodes(self.state, graph, aspect=aspect)
        return self._modified[aspect]


def _error(criterion: Criterion, reason: str) -> SelectorSyntaxError:
    position = None
    if (
        criterion.expression
        and criterion.raw == criterion.expression[criterion.offset : criterion.offset + len(criterion.raw)]
    ):
        position = criterion.offset + criterion.value_offset
    return SelectorSyntaxError(criterion.expression or criterion.raw, reason, position)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


# ---------------------------------------------------------------------------------------------- fqn


def _fqn_wildcard_matches(  # noqa: PLR0917 - the precomputed pieces of one dbt check
    entry: FqnEntry,
    fqn: tuple[str, ...],
    flat: tuple[str, ...],
    joins: tuple[str, ...],
    selector: str,
    parts: list[str],
    first: int,
    rest: Callable[[str], object],
) -> bool:
    """Dbt's ``is_selected_node`` for one (scoped or unscoped) fqn and a selector whose part ``first`` is the
    first with a wildcard; ``rest`` matches ``".".join(parts[first:])`` as ``fnmatch`` does."""
    if entry.versioned:
        if fqn[-2] == selector or "_".join(fqn[-2:]) == "_".join(parts[-2:]):
            return True
    elif fqn[-1] == selector:
        return True
    if len(flat) < len(parts) or list(flat[:first]) != parts[:first]:
        return False
    if rest(joins[first]) is not None:
        return True
    if "." not in selector:  # a bare pattern also matches the model name alone
        return rest(fqn[-2] if entry.versioned else fqn[-1]) is not None
    return False


def _fqn(index: GraphIndex, selector: str) -> set[str]:
    parts = selector.split(".")
    wild = [i for i, part in enumerate(parts) if any(ch in part for ch in WILDCARD_CHARS)]
    if not wild:
        keys, versioned = index.fqn_keys()
        found = set(keys.get(selector, ()))
        found |= versioned.get("_".join(parts[-2:]), set())
        return found
    if selector == "*":
        return {entry.unique_id for entry in index.fqn_entries}
    first = wild[0]
    rest = re.compile(translate(".".join(parts[first:]))).match
    if "." not in selector:
        return _fqn_bare_pattern(index, selector, rest)
    found = set()
    for entry in index.fqn_entries:
        fqn = entry.fqn
        if _fqn_wildcard_matches(entry, fqn, entry.flat, entry.joins, selector, parts, first, rest) or (
            len(fqn) >= 2
            and _fqn_wildcard_matches(
                entry, fqn[1:], entry.unscoped_flat, entry.unscoped_joins, selector, parts, first, rest
            )
        ):
            found.add(entry.unique_id)
    return found


def _fqn_bare_pattern(index: GraphIndex, selector: str, match: Callable[[str], object]) -> set[str]:
    """``_fqn_wildcard_matches`` for a pattern without dots, both fqns at once: the name equals it, or the
    pattern matches the name, the whole dotted fqn or the fqn without its package."""
    # A match must contain the pattern's longest literal run (no brackets: ``*`` and ``?`` only), and the name
    # and the unscoped fqn are substrings of the whole fqn: one substring test rules most nodes out cheaply.
    needle = "" if "[" in selector else max(re.split(r"[*?]", selector), key=len)
    found = set()
    for entry in index.fqn_entries:
        if needle not in entry.joins[0]:
            if entry.leaf == selector or (entry.versioned and "_".join(entry.fqn[-2:]) == selector):
                found.add(entry.unique_id)
            continue
        if (
            match(entry.joins[0]) is not None
            or (entry.unscoped_joins and match(entry.unscoped_joins[0]) is not None)
            or match(entry.leaf) is not None
            or entry.leaf == selector
            or (entry.versioned and "_".join(entry.fqn[-2:]) == selector)
        ):
            found.add(entry.unique_id)
    return found


# ---------------------------------------------------------------------------------------------- by name


def _named(index: GraphIndex, criterion: Criterion, rtype: str, *, max_parts: int) -> set[str]:
    """``source:``, ``exposure:``, ``metric:``... ``[package.]name`` (sources ``[package.]source[.table]``)."""
    value = _text(criterion.value)
    parts = value.split(".")
    if len(parts) > max_parts:
        form = "[package.]source_name[.table_name]" if rtype == "source" else f"[package.]{rtype}_name"
        raise _error(criterion, f"a {rtype} selector has the form {form}")
    package, source = "*", "*"
    if rtype == "source":
        table = "*"
        if len(parts) == 1:
            (source,) = parts
        elif len(parts) == 2:
            source, table = parts
        else:
            package, source, table = parts
    elif len(parts) == 1:
        (table,) = parts
    else:
        package, table = parts
    found = set()
    for uid in index.by_type.get(rtype, ()):
        node = index.nodes[uid]
        if not fnmatch(node.package_name, package) or not fnmatch(node.name, table):
            continue
        if rtype == "source" and not fnmatch(node.source_name or "", source):
            continue
        found.add(uid)
    return found


# ---------------------------------------------------------------------------------------------- config


def _descend(config: dict[str, Any], keys: tuple[str, ...]) -> tuple[bool, Any]:
    value: Any = config
    for depth, key in enumerate(keys):
        if not isinstance(value, dict):
            return False, None
        if key in value:
            value = value[key]
        elif depth == 0 and key in ("pre_hook", "post_hook") and key.replace("_", "-") in value:
            value = value[key.replace("_", "-")]  # NodeConfig's attribute, serialised as pre-hook/post-hook
        else:
            return False, None
    return True, value


def _config(index: GraphIndex, criterion: Criterion) -> set[str]:
    keys = criterion.arguments
    selector = criterion.value
    wants_true = _text(selector).upper() == "TRUE"
    wants_false = _text(selector).upper() == "FALSE"
    if keys == ("severity",):
        wanted = _text(selector).upper()

        def equal(value: Any) -> bool:
            return isinstance(value, str) and value.upper() == wanted
    else:

        def equal(value: Any) -> bool:
            return bool(selector == value)

    found = set()
    for uid, config in index.configurable:
        present, value = _descend(config, keys)
        if not present:
            continue
        if isinstance(value, list):
            hit = any(equal(v) for v in value) or (wants_true and True in value) or (wants_false and False in value)
        else:
            hit = equal(value) or (wants_true and value is True) or (wants_false and value is False)
        if hit:
            found.add(uid)
    return found


# ---------------------------------------------------------------------------------------------- tests


def _test_name(index: GraphIndex, pattern: str) -> set[str]:
    found = set()
    for uid in index.of_types("test", "unit_test"):
        node = index.nodes[uid]
        if node.resource_type == "unit_test":
            if fnmatch(node.name, pattern):
                found.add(uid)
        elif node.test_metadata is not None and fnmatch(node.test_metadata.name, pattern):
            found.add(uid)
    return found


def _test_type(index: GraphIndex, criterion: Criterion) -> set[str]:
    value = _text(criterion.value)
    tests = index.by_type.get("test", set())
    generic = {uid for uid in tests if index.nodes[uid].test_metadata is not None}
    # dbt tests ``selector in ("data")``: a substring test of the string, kept as dbt has it
    if value in _TEST_TYPES:
        return generic
    if value in "data":
        return set(tests)
    if value in "singular":
        return tests - generic
    if value in "unit":
        return set(index.by_type.get("unit_test", ()))
    raise _error(criterion, 'test_type must be "generic", "singular", "unit" or "data"')


# ---------------------------------------------------------------------------------------------- versions


def _older(a: str, b: str) -> bool:
    """Version order as dbt's ``UnparsedVersion.__lt__``: numerically when both are numbers, else as strings."""
    try:
        return float(a) < float(b)
    except ValueError:
        return a < b


def _set_version(value: str | None) -> bool:
    """Whether a version counts as set: dbt tests ``node.version and ...``, so 0 does not."""
    if value is None or value == "":
        return False
    try:
        return not math.isclose(float(value), 0.0)
    except ValueError:
        return True


def _version(index: GraphIndex, criterion: Criterion) -> set[str]:
    value = _text(criterion.value)
    models = index.by_type.get("model", set())
    if value not in ("latest", "prerelease", "old", "none"):
        if not models:
            return set()  # dbt only complains when it looks at a model
        raise _error(criterion, 'version must be "latest", "prerelease", "old" or "none"')
    found = set()
    for uid in models:
        node = index.nodes[uid]
        version, latest = node.version, node.latest_version
        if value == "none":
            hit = version is None
        elif value == "latest":
            hit = version is not None and version == latest
        elif not (_set_version(version) and _set_version(latest)) or version is None or latest is None:
            hit = False
        elif value == "prerelease":
            hit = _older(latest, version)
        else:
            hit = _older(version, latest)
        if hit:
            found.add(uid)
    return found


# ---------------------------------------------------------------------------------------------- state


def _state(index: GraphIndex, criterion: Criterion, context: MethodContext) -> set[str]:
    value = _text(criterion.value)
    if value not in STATE_SELECTORS:
        raise _error(criterion, f"state must be one of {', '.join(STATE_SELECTORS)}")
    state = context.state
    if state is None:
        raise MissingStateError(
            f"{criterion.raw!r} compares with a previous state: pass the reference graph (dbt's --state manifest)"
        )
    if value == "new":
        return {uid for uid in index.all if uid not in state.nodes}
    if value == "old":
        return {uid for uid in index.all if uid in state.nodes}
    if value == "unmodified":
        return set(index.all - context.modified(index.graph, None))
    aspect = None if value == "modified" else value.removeprefix("modified.")
    return context.modified(index.graph, aspect) & index.all


def _result(index: GraphIndex, criterion: Criterion, context: MethodContext) -> set[str]:
    if context.results is None:
        raise MissingStateError(f"{criterion.raw!r} needs the previous run's results (dbt's --state run_results.json)")
    wanted = _text(criterion.value)
    return {uid for uid, status in context.results.items() if status == wanted and uid in index.all}


def _loaded_at(value: str) -> datetime | str:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return value


def _later(a: datetime | str, b: datetime | str) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        try:
            return a > b
        except TypeError:  # naive against aware
            return str(a) > str(b)
    return str(a) > str(b)


def _source_status(index: GraphIndex, criterion: Criterion, context: MethodContext) -> set[str]:
    freshness = context.freshness
    if freshness is None:
        raise MissingStateError(
            f"{criterion.raw!r} needs two freshness results: the state's sources.json and the current one"
        )
    if _text(criterion.value) != "fresher":
        return set()  # dbt implements only "fresher"; "stale" and anything else select nothing
    current = {r.unique_id: _loaded_at(r.max_loaded_at) for r in freshness.current if r.max_loaded_at is not None}
    previous = {r.unique_id: _loaded_at(r.max_loaded_at) for r in freshness.previous if r.max_loaded_at is not None}
    failed = {r.unique_id for r in freshness.current if r.max_loaded_at is None}
    fresher = {uid for uid, at in current.items() if uid not in previous or _later(at, previous[uid])}
    return (fresher - failed) & index.all


# ---------------------------------------------------------------------------------------------- the rest


def _path(index: GraphIndex, criterion: Criterion) -> set[str]:
    value = _text(criterion.value)
    pattern = PurePosixPath(value)
    if pattern.is_absolute():
        raise _error(criterion, "a path selector must be relative to the project folder")
    if not pattern.parts:
        raise _error(criterion, "a path selector needs a path")
    paths = index.paths
    found: set[str] = set()
    for path in paths.glob(pattern.parts):
        found |= paths.selects.get(path, set())
    return found


def _resource_type(index: GraphIndex, criterion: Criterion) -> set[str]:
    value = _text(criterion.value)
    if value not in _NODE_TYPES:
        raise _error(criterion, f"unknown resource_type {value!r}; expected one of {', '.join(sorted(_NODE_TYPES))}")
    return set(index.by_type.get(value, ()))


_NODE_TYPES: Final = frozenset(
    {
        "model",
        "analysis",
        "test",
        "snapshot",
        "operation",
        "seed",
        "rpc",
        "sql_operation",
        "doc",
        "source",
        "macro",
        "exposure",
        "metric",
        "group",
        "saved_query",
        "semantic_model",
        "unit_test",
        "fixture",
        "function",
    }
)
"""dbt's ``NodeType`` values (``resource_type:`` refuses anything else)."""


def _group(index: GraphIndex, pattern: str) -> set[str]:
    found = set()
    for uid in index.parsed | index.by_type.get("metric", set()):
        group = index.nodes[uid].config.get("group")
        if isinstance(group, str) and group and fnmatch(group, pattern):
            found.add(uid)
    return found


def _access(index: GraphIndex, value: str) -> set[str]:
    return {uid for uid in index.by_type.get("model", ()) if index.nodes[uid].access == value}


def _package(index: GraphIndex, pattern: str) -> set[str]:
    if pattern == "this" and index.project_name is not None:
        pattern = index.project_name
    return match_vocabulary(index.by_package, pattern)


def _file(index: GraphIndex, pattern: str) -> set[str]:
    if not has_wildcard(pattern):
        return set(index.file_names.get(pattern, ()))
    return match_vocabulary(index.file_names, pattern)


Method = Callable[[GraphIndex, Criterion, MethodContext], set[str]]

_METHODS: Final[dict[str, Method]] = {
    "fqn": lambda i, c, _: _fqn(i, _text(c.value)),
    "tag": lambda i, c, _: match_vocabulary(i.tags, _text(c.value)),
    "group": lambda i, c, _: _group(i, _text(c.value)),
    "access": lambda i, c, _: _access(i, _text(c.value)),
    "source": lambda i, c, _: _named(i, c, "source", max_parts=3),
    "exposure": lambda i, c, _: _named(i, c, "exposure", max_parts=2),
    "metric": lambda i, c, _: _named(i, c, "metric", max_parts=2),
    "semantic_model": lambda i, c, _: _named(i, c, "semantic_model", max_parts=2),
    "saved_query": lambda i, c, _: _named(i, c, "saved_query", max_parts=2),
    "unit_test": lambda i, c, _: _named(i, c, "unit_test", max_parts=2),
    "path": lambda i, c, _: _path(i, c),
    "file": lambda i, c, _: _file(i, _text(c.value)),
    "package": lambda i, c, _: _package(i, _text(c.value)),
    "config": lambda i, c, _: _config(i, c),
    "test_name": lambda i, c, _: _test_name(i, _text(c.value)),
    "test_type": lambda i, c, _: _test_type(i, c),
    "resource_type": lambda i, c, _: _resource_type(i, c),
    "version": lambda i, c, _: _version(i, c),
    "state": _state,
    "result": _result,
    "source_status": _source_status,
}


def search(index: GraphIndex, criterion: Criterion, context: MethodContext) -> set[str]:
    """The resources ``criterion``'s method and value match (before its graph operators)."""
    method = _METHODS.get(criterion.method)
    if method is None:
        raise SelectorSyntaxError(criterion.raw, f"unknown selection method {criterion.method!r}")
    return method(index, criterion, context)
