"""The diff between two graph versions, and dbt's ``state:modified`` over LogicalGraphs.

``modified_nodes`` reproduces dbt-core's ``StateSelectorMethod`` (``dbt/graph/selector_methods.py``) and the
``same_*`` methods of ``dbt/contracts/graph/nodes.py`` (dbt-core 1.12), rule for rule:

- A node of the new graph is compared with the prior node of the *same unique_id* (dbt knows no renames).
- ``state:modified`` = ``not same_contents(old)`` or an upstream macro changed or (models) the contract changed.
  ``same_contents`` depends on the resource type:

  * models, seeds, snapshots, singular tests, analyses, operations, functions: same body (seeds: same file
    checksum), same config (``unrendered_config`` without alias/schema/database/tags/group), same persisted
    descriptions (only what ``persist_docs`` persists), same fqn, same database representation (unrendered
    database/schema/alias), same contract; models also the same latest_version/access/deprecation_date,
    functions the same arguments/returns. A node with no prior is modified (``state:new``).
  * generic tests: same config (only severity, where, limit, fail_calc, warn_if, error_if, store_failures,
    store_failures_as: dbt's ``TestConfig.same_contents``) and same fqn.
  * unit tests: same checksum; a new unit test is modified.
  * sources: database/schema (unrendered) and identifier, fqn, the whole unrendered config, quoting,
    freshness and loaded_at_field, external.
  * exposures: fqn, type, owner, maturity, url, description, label, depends_on (as a set), unrendered config.
  * metrics: type, description, label, unrendered config without group (dbt compares no more).
  * semantic models: model, description, defaults, entities, dimensions, measures, rendered config,
    primary_entity, group. Saved queries: query_params (metrics, group_by, where), description, label,
    rendered config, group, exports, tags.
  * dbt's quirk, kept: a *new* source, exposure, metric, semantic model or saved query is not
    ``state:modified`` (their ``same_contents(None)`` is true), unless an upstream macro changed.
- A macro is modified when its ``macro_sql`` differs, or it was added or removed; a node is modified when a
  macro it depends on reaches a modified macro through ``depends_on.macros`` (any depth).
- Sub-selectors (``aspect=``): ``body``, ``configs``, ``persisted_descriptions``, ``relation`` and
  ``contract`` apply only to the resource types that have the corresponding dbt method, and select every new
  node of those types; ``macros`` selects by upstream macros only.

Not reproduced: dbt raises for a breaking contract change of a versioned model and warns for an unversioned
one; here it is simply ``contract``. ``var()``/``env_var()`` changes are invisible to dbt and to us.

``diff_graphs`` reports the same modifying aspects (``contracts.graph_diff``) plus informational ones, for
every node whose identity survived. For speed, identical nodes are skipped by Struct equality first, and the
macro walk only runs when some macro changed: a 10k-node graph diffs with itself in a few milliseconds.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Collection, Iterable
from typing import Any

import msgspec

from contracts.graph import Column, Contract, GraphNode, LogicalGraph
from contracts.graph_diff import DBT_SUB_SELECTORS, MODIFYING_ASPECTS, GraphDiff, NodeChange
from services.ingestion.identity import Identities

__all__ = [
    "DBT_LS_RESOURCE_TYPES",
    "descendants",
    "diff_graphs",
    "modified_macros",
    "modified_nodes",
    "node_aspects",
    "state_modified_plus",
]

DBT_LS_RESOURCE_TYPES: frozenset[str] = frozenset(
    {
        "model",
        "snapshot",
        "seed",
        "test",
        "source",
        "exposure",
        "metric",
        "saved_query",
        "semantic_model",
        "unit_test",
        "function",
    }
)
"""What ``dbt ls`` lists by default (``ListTask.DEFAULT_RESOURCE_VALUES``); ``--resource-type all`` adds
``analysis``. Operations (hooks) are never listed."""

# Resource types that are not dbt ParsedNodes: they override same_contents and lack some same_* methods.
_SOURCE = "source"
_EXPOSURE = "exposure"
_METRIC = "metric"
_SEMANTIC_MODEL = "semantic_model"
_SAVED_QUERY = "saved_query"
_UNIT_TEST = "unit_test"
_NOT_PARSED = frozenset({_SOURCE, _EXPOSURE, _METRIC, _SEMANTIC_MODEL, _SAVED_QUERY, _UNIT_TEST})
_NEW_IS_UNMODIFIED = frozenset({_SOURCE, _EXPOSURE, _METRIC, _SEMANTIC_MODEL, _SAVED_QUERY})

_CONFIG_EXCLUDED = frozenset({"alias", "schema", "database", "tags", "group"})
_TEST_CONFIG_COMPARED = (
    "severity",
    "where",
    "limit",
    "fail_calc",
    "warn_if",
    "error_if",
    "store_failures",
    "store_failures_as",
)
_RELATION_KEYS = ("database", "schema", "alias")

# ``extra`` keys each resource type's same_contents compares (aspect ``definition``).
_DEFINITION_EXTRA: dict[str, tuple[str, ...]] = {
    _SOURCE: ("quoting", "freshness", "loaded_at_field", "external"),
    _EXPOSURE: ("type", "owner", "maturity", "url", "label"),
    _METRIC: ("type", "label"),
    _SEMANTIC_MODEL: ("model", "defaults", "entities", "dimensions", "measures", "primary_entity"),
    _SAVED_QUERY: ("query_params", "label", "exports"),
    "function": ("arguments", "returns"),
}

# Which dbt sub-selector methods each kind of node has (check_modified_factory's ``hasattr``).
_PARSED_SUB_SELECTORS = frozenset({"body", "configs", "persisted_descriptions", "relation", "contract"})
_OTHER_SUB_SELECTORS: dict[str, frozenset[str]] = {
    _SOURCE: frozenset({"configs", "relation"}),
    _EXPOSURE: frozenset({"configs"}),
    _METRIC: frozenset({"configs"}),
    _SEMANTIC_MODEL: frozenset({"configs"}),
    _SAVED_QUERY: frozenset({"configs"}),
    _UNIT_TEST: frozenset(),
}


def _sub_selectors_of(resource_type: str) -> frozenset[str]:
    return _OTHER_SUB_SELECTORS.get(resource_type, _PARSED_SUB_SELECTORS)


def _is_generic_test(node: GraphNode) -> bool:
    return node.resource_type == "test" and node.test_metadata is not None


# ---------------------------------------------------------------------------------------------- dbt's checks


def _without(config: dict[str, Any], excluded: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in excluded}


def _same_config(old: GraphNode, new: GraphNode) -> bool:
    rtype = new.resource_type
    if rtype == "test":
        # TestConfig.same_contents: only the keys that change a test's outcome (presence counts).
        a, b = new.unrendered_config, old.unrendered_config
        return all((k in a) == (k in b) and a.get(k) == b.get(k) for k in _TEST_CONFIG_COMPARED)
    if rtype in (_SEMANTIC_MODEL, _SAVED_QUERY):
        return new.config == old.config  # these compare the rendered config
    if rtype in (_SOURCE, _EXPOSURE):
        return new.unrendered_config == old.unrendered_config  # SourceConfig/ExposureConfig exclude nothing
    if rtype == _METRIC:
        excluded = frozenset({"group"})
        return _without(new.unrendered_config, excluded) == _without(old.unrendered_config, excluded)
    if new.unrendered_config == old.unrendered_config:
        return True
    return _without(new.unrendered_config, _CONFIG_EXCLUDED) == _without(old.unrendered_config, _CONFIG_EXCLUDED)


def _source_relation(node: GraphNode) -> tuple[Any, Any, Any]:
    extra = node.extra
    return extra.get("unrendered_database", node.database), extra.get("unrendered_schema", node.schema_name), node.alias


def _same_relation(old: GraphNode, new: GraphNode) -> bool:
    if new.resource_type == _SOURCE:
        return _source_relation(new) == _source_relation(old)
    a, b = new.unrendered_config, old.unrendered_config
    return all(a.get(k) == b.get(k) for k in _RELATION_KEYS)


def _persist_docs(node: GraphNode) -> tuple[bool, bool]:
    persist = node.config.get("persist_docs")
    if not isinstance(persist, dict):
        return False, False
    return bool(persist.get("relation")), bool(persist.get("columns"))


def _column_descriptions(columns: Iterable[Column]) -> dict[str, str]:
    return {c.name: c.description for c in columns}


def _same_persisted_description(old: GraphNode, new: GraphNode) -> bool:
    relation, columns = _persist_docs(new)  # dbt reads the new node's settings only
    if relation and new.description != old.description:
        return False
    return not (columns and _column_descriptions(new.columns) != _column_descriptions(old.columns))


_NO_CONTRACT = Contract()


def _same_contract(old: GraphNode, new: GraphNode) -> bool:
    """ModelNode.same_contract (other node types always have the same contract)."""
    if new.resource_type != "model":
        return True
    was, now = old.contract or _NO_CONTRACT, new.contract or _NO_CONTRACT
    if not was.enforced and not now.enforced:
        return True
    if not was.enforced:
        return False
    return now.enforced and now.checksum == was.checksum


def _same_body(old: GraphNode, new: GraphNode) -> bool:
    if new.resource_type == "seed":
        return new.checksum == old.checksum  # SeedNode.same_body is same_seeds
    return new.body_hash == old.body_hash


def _same_versions(old: GraphNode, new: GraphNode) -> bool:
    return (
        new.latest_version == old.latest_version
        and new.access == old.access
        and new.deprecation_date == old.deprecation_date
    )


def _same_definition(old: GraphNode, new: GraphNode) -> bool:
    rtype = new.resource_type
    keys = _DEFINITION_EXTRA.get(rtype, ())
    if any(new.extra.get(k) != old.extra.get(k) for k in keys):
        return False
    if rtype in (_EXPOSURE, _METRIC, _SEMANTIC_MODEL, _SAVED_QUERY) and new.description != old.description:
        return False
    if rtype == _EXPOSURE and set(new.depends_on_nodes) != set(old.depends_on_nodes):
        return False
    if rtype in (_SEMANTIC_MODEL, _SAVED_QUERY) and new.group != old.group:
        return False
    return not (rtype == _SAVED_QUERY and new.tags != old.tags)


def _content_aspects(old: GraphNode, new: GraphNode) -> set[str]:
    """The modifying aspects (without ``macros``) that make dbt's ``same_contents`` false for this type."""
    rtype = new.resource_type
    if rtype == _UNIT_TEST:
        return {"checksum"} if new.checksum != old.checksum else set()
    if _is_generic_test(new):
        return _generic_test_aspects(old, new)
    if rtype in _NOT_PARSED:
        return _resource_aspects(old, new)
    return _parsed_node_aspects(old, new)


def _generic_test_aspects(old: GraphNode, new: GraphNode) -> set[str]:
    aspects: set[str] = set()
    if not _same_config(old, new):
        aspects.add("configs")
    if new.fqn != old.fqn:
        aspects.add("fqn")
    return aspects


def _resource_aspects(old: GraphNode, new: GraphNode) -> set[str]:
    """Sources, exposures, metrics, semantic models, saved queries."""
    rtype = new.resource_type
    aspects: set[str] = set()
    if not _same_config(old, new):
        aspects.add("configs")
    if rtype in (_SOURCE, _EXPOSURE) and new.fqn != old.fqn:
        aspects.add("fqn")
    if rtype == _SOURCE and not _same_relation(old, new):
        aspects.add("relation")
    if not _same_definition(old, new):
        aspects.add("definition")
    return aspects


def _parsed_node_aspects(old: GraphNode, new: GraphNode) -> set[str]:
    """Models, seeds, snapshots, singular tests, analyses, operations, functions."""
    rtype = new.resource_type
    checks = (
        ("body", _same_body),
        ("configs", _same_config),
        ("persisted_descriptions", _same_persisted_description),
        ("relation", _same_relation),
        ("contract", _same_contract),
    )
    aspects = {aspect for aspect, same in checks if not same(old, new)}
    if new.fqn != old.fqn:
        aspects.add("fqn")
    if "body" in aspects and rtype == "seed":
        aspects.add("checksum")
    if rtype == "model" and not _same_versions(old, new):
        aspects.add("versions")
    if rtype in _DEFINITION_EXTRA and not _same_definition(old, new):
        aspects.add("definition")
    return aspects


def _sub_selector_differs(aspect: str, old: GraphNode, new: GraphNode) -> bool:
    """The check of ``check_modified_factory(<same_method>)`` for an existing node that has the method."""
    if aspect == "body":
        return not _same_body(old, new)
    if aspect == "configs":
        return not _same_config(old, new)
    if aspect == "persisted_descriptions":
        return not _same_persisted_description(old, new)
    if aspect == "relation":
        return not _same_relation(old, new)
    return not _same_contract(old, new)  # "contract"


# ---------------------------------------------------------------------------------------------- macros


def modified_macros(prior: LogicalGraph, new: LogicalGraph) -> set[str]:
    """Macros added, removed, or whose SQL changed (dbt's ``_macros_modified``)."""
    old, cur = prior.macros, new.macros
    if old == cur:
        return set()
    changed = {uid for uid, m in cur.items() if uid not in old or old[uid].sql_hash != m.sql_hash}
    changed.update(uid for uid in old if uid not in cur)
    return changed


def _tainted_macros(new: LogicalGraph, changed: set[str]) -> set[str]:
    """Every macro that is modified or reaches a modified macro through ``depends_on_macros``."""
    if not changed:
        return set()
    callers: dict[str, list[str]] = defaultdict(list)
    for uid, macro in new.macros.items():
        for dep in macro.depends_on_macros:
            callers[dep].append(uid)
    tainted = set(changed)
    queue = deque(changed)
    while queue:
        for caller in callers.get(queue.popleft(), ()):
            if caller not in tainted:
                tainted.add(caller)
                queue.append(caller)
    return tainted


def _uses_tainted(node: GraphNode, tainted: set[str]) -> bool:
    return bool(tainted) and any(m in tainted for m in node.depends_on_macros)


# ---------------------------------------------------------------------------------------------- state:modified


def modified_nodes(prior: LogicalGraph, new: LogicalGraph, *, aspect: str | None = None) -> set[str]:
    """The nodes dbt's ``state:modified`` (``aspect=None``) or ``state:modified.<aspect>`` for ``aspect`` in
    ``DBT_SUB_SELECTORS``: unique_ids of ``new`` (removed nodes are never selected)."""
    if aspect is not None and aspect not in DBT_SUB_SELECTORS:
        msg = f"unknown state:modified sub-selector {aspect!r}, expected one of {DBT_SUB_SELECTORS}"
        raise ValueError(msg)
    tainted = _tainted_macros(new, modified_macros(prior, new)) if aspect in (None, "macros") else set()
    old_nodes = prior.nodes
    selected: set[str] = set()
    for uid, node in new.nodes.items():
        old = old_nodes.get(uid)
        if aspect == "macros":
            hit = _uses_tainted(node, tainted)
        elif aspect is not None:
            if aspect not in _sub_selectors_of(node.resource_type):
                hit = False
            elif old is None:
                hit = True
            else:
                hit = old != node and _sub_selector_differs(aspect, old, node)
        elif old is None:
            hit = node.resource_type not in _NEW_IS_UNMODIFIED or _uses_tainted(node, tainted)
        else:
            hit = (old != node and bool(_content_aspects(old, node))) or _uses_tainted(node, tainted)
        if hit:
            selected.add(uid)
    return selected


def descendants(graph: LogicalGraph, roots: Iterable[str]) -> set[str]:
    """``roots`` and everything that depends on them, directly or not (through ``depends_on_nodes``)."""
    seen = set(roots)
    if not seen:
        return seen
    children: dict[str, list[str]] = defaultdict(list)
    for uid, node in graph.nodes.items():
        for parent in node.depends_on_nodes:
            children[parent].append(uid)
    queue = deque(seen)
    while queue:
        for child in children.get(queue.popleft(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


def state_modified_plus(
    prior: LogicalGraph, new: LogicalGraph, *, resource_types: Collection[str] = DBT_LS_RESOURCE_TYPES
) -> set[str]:
    """``dbt ls --select state:modified+``: modified nodes and all their descendants (over every node of the
    graph), keeping the resource types ``dbt ls`` lists (pass ``DBT_LS_RESOURCE_TYPES | {"analysis"}`` for
    ``--resource-type all``)."""
    selected = descendants(new, modified_nodes(prior, new))
    nodes = new.nodes
    return {uid for uid in selected if uid in nodes and nodes[uid].resource_type in resource_types}


# ---------------------------------------------------------------------------------------------- the diff

_INFORMATIONAL_FIELDS: dict[str, str] = {
    "description": "description",
    "columns": "columns",
    "meta": "meta",
    "tags": "tags",
    "depends_on_nodes": "depends_on",
    "depends_on_macros": "depends_on",
}
_DICT_KEY_ASPECTS = {"tags": "tags", "meta": "meta", "docs": "docs"}
# Fields whose difference is fully described by a modifying aspect when that aspect is reported.
_FIELD_MODIFYING: dict[str, tuple[str, ...]] = {
    "body_hash": ("body",),
    "fqn": ("fqn",),
    "contract": ("contract",),
    "latest_version": ("versions",),
    "access": ("versions",),
    "deprecation_date": ("versions",),
    "checksum": ("checksum", "body"),
    "alias": ("relation",),
    "database": ("relation",),
    "schema_name": ("relation",),
    "relation_name": ("relation",),
    "materialized": ("configs",),
}
_SKIPPED_FIELDS = frozenset({"unique_id", "config", "unrendered_config", "extra", *_INFORMATIONAL_FIELDS})


def node_aspects(old: GraphNode, new: GraphNode, *, macros_changed: bool = False) -> tuple[str, ...]:
    """All aspects (modifying and informational) in which ``new`` differs from ``old``, sorted."""
    aspects = _content_aspects(old, new) if old != new else set()
    if macros_changed:
        aspects.add("macros")
    if old == new:
        return tuple(sorted(aspects))
    for field, aspect in _INFORMATIONAL_FIELDS.items():
        if getattr(old, field) != getattr(new, field):
            if field == "columns" and _same_columns_but_tag_order(old.columns, new.columns):
                continue
            aspects.add(aspect)
    for field in new.__struct_fields__:
        if field in _SKIPPED_FIELDS or getattr(old, field) == getattr(new, field):
            continue
        if not any(a in aspects for a in _FIELD_MODIFYING.get(field, ())):
            aspects.add("other")
    explained: set[str] = set()
    if "configs" in aspects:
        explained.update(k for k in {*old.unrendered_config, *new.unrendered_config} if _config_compares(new, k))
    if "relation" in aspects:
        explained.update(_RELATION_KEYS)
    _dict_aspects(old.unrendered_config, new.unrendered_config, aspects, explained=explained)
    if "configs" in aspects and new.resource_type in (_SEMANTIC_MODEL, _SAVED_QUERY):
        explained.update(k for k in {*old.config, *new.config} if k not in _DICT_KEY_ASPECTS)
    _dict_aspects(old.config, new.config, aspects, explained=explained)
    definition = _DEFINITION_EXTRA.get(new.resource_type, ()) if "definition" in aspects else ()
    relation = ("unrendered_database", "unrendered_schema") if "relation" in aspects else ()
    _dict_aspects(old.extra, new.extra, aspects, explained=(*definition, *relation))
    return tuple(sorted(aspects))


def _config_compares(node: GraphNode, key: str) -> bool:
    """Whether the type's ``same_config`` compares this unrendered config key."""
    rtype = node.resource_type
    if rtype == "test":
        return key in _TEST_CONFIG_COMPARED
    if rtype in (_SOURCE, _EXPOSURE):
        return True
    if rtype == _METRIC:
        return key != "group"
    if rtype in (_SEMANTIC_MODEL, _SAVED_QUERY):
        return False  # these compare the rendered config
    return key not in _CONFIG_EXCLUDED


def _tag_order_free(column: Column) -> Column:
    return msgspec.structs.replace(column, tags=tuple(sorted(column.tags))) if len(column.tags) > 1 else column


def _same_columns_but_tag_order(old: tuple[Column, ...], new: tuple[Column, ...]) -> bool:
    """Equal columns up to the order of their tags (dbt merges them through a set: the order varies per parse)."""
    return len(old) == len(new) and all(
        a == b or _tag_order_free(a) == _tag_order_free(b) for a, b in zip(old, new, strict=True)
    )


def _dict_aspects(old: dict[str, Any], new: dict[str, Any], aspects: set[str], *, explained: Iterable[str]) -> None:
    """Add the aspect of every key whose value differs, unless a reported modifying aspect explains it."""
    if old == new:
        return
    skip = set(explained)
    for key in {*old, *new}:
        if key in skip:
            continue
        if (key in old) != (key in new) or old.get(key) != new.get(key):
            aspects.add(_DICT_KEY_ASPECTS.get(key, "other"))


def diff_graphs(prior: LogicalGraph | None, new: LogicalGraph, identities: Identities) -> GraphDiff:
    """What changed from ``prior`` to ``new`` (``prior=None``: everything is added), node identities taken
    from ``identities`` (``assign_identities``). Every tuple is sorted; see ``contracts.graph_diff``."""
    ids = identities.ids
    if prior is None:
        return GraphDiff(added=tuple(sorted(new.nodes)), macros_added=tuple(sorted(new.macros)))

    renamed_from = {r.new_unique_id: r.old_unique_id for r in identities.renames}
    renamed_old = set(renamed_from.values())
    old_nodes, new_nodes = prior.nodes, new.nodes

    changed_macros = modified_macros(prior, new)
    tainted = _tainted_macros(new, changed_macros)

    added: list[str] = []
    changes: list[NodeChange] = []
    for uid, node in new_nodes.items():
        old_uid = renamed_from.get(uid, uid)
        old = old_nodes.get(old_uid)
        if old is None:
            added.append(uid)
            continue
        uses_changed_macro = _uses_tainted(node, tainted)
        if old == node and not uses_changed_macro:
            continue
        aspects = node_aspects(old, node, macros_changed=uses_changed_macro)
        if not aspects:
            continue
        node_uuid = ids.get(uid)
        if node_uuid is None:
            msg = f"node {uid!r} has no identity"
            raise ValueError(msg)
        modified = any(a in MODIFYING_ASPECTS for a in aspects)
        changes.append(NodeChange(unique_id=uid, node_uuid=node_uuid, aspects=aspects, modified=modified))
    removed = [uid for uid in old_nodes if uid not in new_nodes and uid not in renamed_old]

    old_macros, new_macros = prior.macros, new.macros
    return GraphDiff(
        added=tuple(sorted(added)),
        removed=tuple(sorted(removed)),
        renamed=tuple(sorted(identities.renames, key=lambda r: r.old_unique_id)),
        changed=tuple(sorted(changes, key=lambda c: c.unique_id)),
        macros_added=tuple(sorted(uid for uid in changed_macros if uid not in old_macros)),
        macros_removed=tuple(sorted(uid for uid in changed_macros if uid not in new_macros)),
        macros_changed=tuple(sorted(uid for uid in changed_macros if uid in old_macros and uid in new_macros)),
    )
