"""The graph diff and dbt's state:modified, on hand-built LogicalGraphs: every aspect is detected by a minimal
change, and the changes dbt ignores (tags, alias in the config comparison, unpersisted descriptions) are not."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.graph import ArtifactInfo, Column, Contract, GraphNode, LogicalGraph, Macro
from contracts.graph import TestMetadata as GenericTestMetadata
from contracts.graph_diff import ASPECTS, MODIFYING_ASPECTS, GraphDiff
from services.ingestion.diff import (
    DBT_LS_RESOURCE_TYPES,
    diff_graphs,
    modified_macros,
    modified_nodes,
    node_aspects,
    state_modified_plus,
)
from services.ingestion.identity import Identities, assign_identities

INFO = ArtifactInfo(
    kind="manifest", schema_version=12, dbt_schema_version="https://schemas.getdbt.com/dbt/manifest/v12.json"
)
PREFIX = {"model": "model", "seed": "seed", "test": "test", "source": "source", "exposure": "exposure"}


def node(unique_id: str, **fields: Any) -> GraphNode:
    """A node whose resource type, package and name come from its unique_id (``model.pkg.name``)."""
    rtype, package, *rest = unique_id.split(".")
    name = rest[-1]
    defaults: dict[str, Any] = {
        "unique_id": unique_id,
        "resource_type": rtype,
        "name": name,
        "package_name": package,
        "fqn": (package, *rest),
        "original_file_path": f"models/{name}.sql",
    }
    if rtype in ("model", "snapshot", "analysis", "test"):
        defaults["body_hash"] = f"body-of-{name}"
    if rtype == "seed":
        defaults["checksum"] = f"sha256:{name}"
    defaults.update(fields)
    return GraphNode(**defaults)


def graph(*nodes: GraphNode, macros: tuple[Macro, ...] = ()) -> LogicalGraph:
    return LogicalGraph(info=INFO, nodes={n.unique_id: n for n in nodes}, macros={m.unique_id: m for m in macros})


def macro(unique_id: str, sql: str = "x", *deps: str) -> Macro:
    return Macro(
        unique_id=unique_id, name=unique_id.rsplit(".", 1)[-1], package_name="p", sql_hash=sql, depends_on_macros=deps
    )


def replace(n: GraphNode, **fields: Any) -> GraphNode:
    return msgspec.structs.replace(n, **fields)


def identities_of(prior: LogicalGraph | None, new: LogicalGraph) -> Identities:
    prior_ids = assign_identities(None, {}, prior).ids if prior is not None else {}
    return assign_identities(prior, prior_ids, new)


def diff(prior: LogicalGraph, new: LogicalGraph) -> GraphDiff:
    return diff_graphs(prior, new, identities_of(prior, new))


def single_change(old: GraphNode, new: GraphNode) -> tuple[tuple[str, ...], bool, set[str]]:
    """(aspects, modified, dbt's state:modified) for one node changed from ``old`` to ``new``."""
    a, b = graph(old), graph(new)
    d = diff(a, b)
    assert not d.added
    assert not d.removed
    assert len(d.changed) == 1
    return d.changed[0].aspects, d.changed[0].modified, modified_nodes(a, b)


MODEL = node("model.p.m", unrendered_config={"materialized": "view"}, config={"materialized": "view"})


# ------------------------------------------------------------------------------------------ each aspect, models


@pytest.mark.parametrize(
    ("change", "aspects", "modified"),
    [
        ({"body_hash": "other"}, ("body",), True),
        ({"unrendered_config": {"materialized": "table"}}, ("configs",), True),
        ({"unrendered_config": {"materialized": "view", "alias": "m2"}}, ("relation",), True),
        ({"unrendered_config": {"materialized": "view", "schema": "s"}}, ("relation",), True),
        ({"unrendered_config": {"materialized": "view", "database": "d"}}, ("relation",), True),
        ({"unrendered_config": {"materialized": "view", "tags": ["a"]}, "tags": ("a",)}, ("tags",), False),
        ({"unrendered_config": {"materialized": "view", "group": "g"}, "group": "g"}, ("other",), False),
        ({"fqn": ("p", "sub", "m")}, ("fqn",), True),
        ({"contract": Contract(enforced=True, checksum="c")}, ("contract",), True),
        ({"latest_version": "2"}, ("versions",), True),
        ({"access": "public"}, ("versions",), True),
        ({"deprecation_date": "2030-01-01"}, ("versions",), True),
        ({"description": "now documented"}, ("description",), False),
        ({"columns": (Column(name="id", description="the id"),)}, ("columns",), False),
        ({"meta": {"owner": "x"}}, ("meta",), False),
        ({"depends_on_nodes": ("seed.p.s",)}, ("depends_on",), False),
        ({"config": {"materialized": "view", "docs": {"show": False}}}, ("docs",), False),
        ({"patch_path": "p://models/schema.yml"}, ("other",), False),
    ],
)
def test_model_aspects(change: dict[str, Any], aspects: tuple[str, ...], modified: bool) -> None:
    got, is_modified, dbt = single_change(MODEL, replace(MODEL, **change))
    assert got == aspects
    assert is_modified is modified
    assert dbt == ({"model.p.m"} if modified else set())


def test_alias_in_unrendered_config_is_a_relation_change_not_a_config_change() -> None:
    a, b = graph(MODEL), graph(replace(MODEL, unrendered_config={"materialized": "view", "alias": "other"}))
    assert modified_nodes(a, b, aspect="configs") == set()
    assert modified_nodes(a, b, aspect="relation") == {"model.p.m"}


def test_tags_change_is_not_modified_under_any_sub_selector() -> None:
    a = graph(MODEL)
    b = graph(replace(MODEL, tags=("nightly",), unrendered_config={"materialized": "view", "tags": ["nightly"]}))
    for aspect in (None, "body", "configs", "relation", "persisted_descriptions", "macros", "contract"):
        assert modified_nodes(a, b, aspect=aspect) == set(), aspect


def test_description_counts_only_when_persist_docs_persists_it() -> None:
    documented = {"description": "orders", "columns": (Column(name="id", description="key"),)}
    assert single_change(MODEL, replace(MODEL, **documented))[2] == set()

    for persist, what in (({"relation": True}, "description"), ({"columns": True}, "columns")):
        config = {"materialized": "view", "persist_docs": persist}
        base = replace(MODEL, config=config, columns=(Column(name="id"),))
        changed = replace(base, **{what: documented[what]})
        aspects, modified, dbt = single_change(base, changed)
        assert "persisted_descriptions" in aspects
        assert modified
        assert dbt == {"model.p.m"}
        assert modified_nodes(graph(base), graph(changed), aspect="persisted_descriptions") == {"model.p.m"}

    # relation docs persisted, but only a column description changed: not modified
    config = {"materialized": "view", "persist_docs": {"relation": True}}
    base = replace(MODEL, config=config, columns=(Column(name="id"),))
    assert single_change(base, replace(base, columns=documented["columns"]))[2] == set()


def test_contract_rules() -> None:
    enforced = replace(MODEL, contract=Contract(enforced=True, checksum="a"))
    assert single_change(enforced, replace(enforced, contract=Contract(enforced=True, checksum="b")))[0] == (
        "contract",
    )
    assert single_change(enforced, replace(enforced, contract=Contract(enforced=False)))[0] == ("contract",)
    # not enforced before or after: a checksum difference is no contract change
    loose = replace(MODEL, contract=Contract(enforced=False, checksum="a"))
    aspects, modified, _ = single_change(loose, replace(loose, contract=Contract(enforced=False, checksum="b")))
    assert aspects == ("other",)
    assert not modified
    g1, g2 = graph(enforced), graph(replace(enforced, contract=Contract(enforced=True, checksum="b")))
    assert modified_nodes(g1, g2, aspect="contract") == {"model.p.m"}


# ------------------------------------------------------------------------------------------ other resource types


def test_seed_checksum_is_its_body() -> None:
    seed = node("seed.p.s")
    aspects, modified, dbt = single_change(seed, replace(seed, checksum="sha256:other"))
    assert aspects == ("body", "checksum")
    assert modified
    assert modified_nodes(graph(seed), graph(replace(seed, checksum="sha256:other")), aspect="body") == {"seed.p.s"}
    assert dbt == {"seed.p.s"}


GENERIC = node(
    "test.p.not_null_m_id",
    test_metadata=GenericTestMetadata(name="not_null", kwargs={"column_name": "id"}),
    column_name="id",
    depends_on_nodes=("model.p.m",),
    unrendered_config={"severity": "error"},
)


@pytest.mark.parametrize(
    ("change", "modified"),
    [
        ({"unrendered_config": {"severity": "warn"}}, True),
        ({"unrendered_config": {"severity": "error", "where": "x > 1"}}, True),
        ({"unrendered_config": {"severity": "error", "store_failures": True}}, True),
        ({"fqn": ("p", "other")}, True),
        ({"unrendered_config": {"severity": "error", "tags": ["t"]}, "tags": ("t",)}, False),
        ({"unrendered_config": {"severity": "error", "alias": "a"}}, False),
        ({"unrendered_config": {"severity": "error", "enabled": True}}, False),
        ({"body_hash": "other"}, False),
        ({"description": "d"}, False),
    ],
)
def test_generic_tests_compare_only_outcome_config_and_fqn(change: dict[str, Any], modified: bool) -> None:
    aspects, is_modified, dbt = single_change(GENERIC, replace(GENERIC, **change))
    assert is_modified is modified
    assert dbt == ({GENERIC.unique_id} if modified else set())
    assert bool(set(aspects) & MODIFYING_ASPECTS) is modified


def test_generic_test_body_is_still_seen_by_the_body_sub_selector() -> None:
    # dbt's state:modified.body checks same_body on every node that has it, generic tests included
    a, b = graph(GENERIC), graph(replace(GENERIC, body_hash="other"))
    assert modified_nodes(a, b) == set()
    assert modified_nodes(a, b, aspect="body") == {GENERIC.unique_id}


def test_singular_test_compares_its_body_but_only_the_outcome_config() -> None:
    # a singular test is a full ParsedNode (body, fqn, relation...) whose config is a TestConfig
    singular = node("test.p.assert_positive", unrendered_config={"tags": ["x"]})
    assert single_change(singular, replace(singular, body_hash="new"))[2] == {singular.unique_id}
    assert single_change(singular, replace(singular, unrendered_config={"tags": ["y"]}))[2] == set()
    assert single_change(singular, replace(singular, unrendered_config={"tags": ["x"], "enabled": True}))[2] == set()
    warn = replace(singular, unrendered_config={"tags": ["x"], "severity": "warn"})
    assert single_change(singular, warn)[2] == {singular.unique_id}


SOURCE = node(
    "source.p.raw.orders",
    database="RAW",
    schema_name="raw",
    alias="orders",
    source_name="raw",
    extra={"quoting": {"database": False}, "loaded_at_field": "ts", "unrendered_database": "RAW"},
)


@pytest.mark.parametrize(
    ("change", "aspect"),
    [
        ({"alias": "orders_v2"}, "relation"),
        ({"schema_name": "raw2"}, "relation"),
        ({"extra": {**SOURCE.extra, "unrendered_database": "{{ env_var('DB') }}"}}, "relation"),
        ({"fqn": ("p", "raw", "orders2")}, "fqn"),
        ({"unrendered_config": {"enabled": True}}, "configs"),
        ({"unrendered_config": {"tags": ["x"]}}, "configs"),  # SourceConfig excludes nothing
        ({"extra": {**SOURCE.extra, "quoting": {"database": True}}}, "definition"),
        ({"extra": {**SOURCE.extra, "loaded_at_field": "loaded_at"}}, "definition"),
        ({"extra": {**SOURCE.extra, "freshness": {"warn_after": {"count": 1, "period": "day"}}}}, "definition"),
        ({"extra": {**SOURCE.extra, "external": {"location": "s3://x"}}}, "definition"),
    ],
)
def test_source_definition(change: dict[str, Any], aspect: str) -> None:
    aspects, modified, dbt = single_change(SOURCE, replace(SOURCE, **change))
    assert aspect in aspects
    assert modified
    assert dbt == {SOURCE.unique_id}


@pytest.mark.parametrize(
    "change", [{"description": "d"}, {"meta": {"a": 1}}, {"tags": ("t",)}, {"columns": (Column(name="c"),)}]
)
def test_source_descriptions_meta_tags_are_not_modifications(change: dict[str, Any]) -> None:
    aspects, modified, dbt = single_change(SOURCE, replace(SOURCE, **change))
    assert not modified
    assert dbt == set()
    assert set(aspects) <= {"description", "meta", "tags", "columns"}


EXPOSURE = node(
    "exposure.p.dash",
    depends_on_nodes=("model.p.a", "model.p.b"),
    extra={"type": "dashboard", "owner": {"name": "x"}, "maturity": "high", "url": "https://x", "label": "Dash"},
)


@pytest.mark.parametrize(
    ("change", "modified"),
    [
        ({"extra": {**EXPOSURE.extra, "type": "ml"}}, True),
        ({"extra": {**EXPOSURE.extra, "owner": {"name": "y"}}}, True),
        ({"extra": {**EXPOSURE.extra, "maturity": "low"}}, True),
        ({"extra": {**EXPOSURE.extra, "url": "https://y"}}, True),
        ({"extra": {**EXPOSURE.extra, "label": "Board"}}, True),
        ({"description": "what it shows"}, True),
        ({"depends_on_nodes": ("model.p.a",)}, True),
        ({"depends_on_nodes": ("model.p.b", "model.p.a")}, False),  # dbt compares them as a set
        ({"unrendered_config": {"enabled": True}}, True),
        ({"fqn": ("p", "dash2")}, True),
        ({"meta": {"a": 1}}, False),
        ({"tags": ("t",)}, False),
    ],
)
def test_exposure_definition(change: dict[str, Any], modified: bool) -> None:
    _, is_modified, dbt = single_change(EXPOSURE, replace(EXPOSURE, **change))
    assert is_modified is modified
    assert dbt == ({EXPOSURE.unique_id} if modified else set())


def test_unit_test_compares_its_checksum_only() -> None:
    unit = node("unit_test.p.m.test_m", checksum="abc", depends_on_nodes=("model.p.m",))
    assert single_change(unit, replace(unit, checksum="def"))[0:2] == (("checksum",), True)
    assert single_change(unit, replace(unit, description="d", fqn=("p", "x")))[2] == set()


# ------------------------------------------------------------------------------------------ new nodes


def test_new_nodes_are_modified_except_dbts_same_contents_none_quirk() -> None:
    prior = graph(MODEL)
    unit = node("unit_test.p.m.t", checksum="c")
    new = graph(MODEL, node("model.p.n"), node("seed.p.s"), SOURCE, EXPOSURE, unit)
    assert modified_nodes(prior, new) == {"model.p.n", "seed.p.s", unit.unique_id}
    assert modified_nodes(prior, new, aspect="body") == {"model.p.n", "seed.p.s"}
    assert modified_nodes(prior, new, aspect="configs") == {
        "model.p.n",
        "seed.p.s",
        SOURCE.unique_id,
        EXPOSURE.unique_id,
    }
    assert modified_nodes(prior, new, aspect="relation") == {"model.p.n", "seed.p.s", SOURCE.unique_id}
    d = diff(prior, new)
    assert d.added == tuple(sorted(new.nodes.keys() - {"model.p.m"}))
    assert d.changed == ()


def test_unknown_sub_selector_is_rejected() -> None:
    with pytest.raises(ValueError, match="sub-selector"):
        modified_nodes(graph(MODEL), graph(MODEL), aspect="vars")


# ------------------------------------------------------------------------------------------ macros


def test_macro_change_propagates_transitively() -> None:
    macros = (
        macro("macro.p.outer", "o", "macro.p.middle"),
        macro("macro.p.middle", "m", "macro.p.inner"),
        macro("macro.p.inner", "i"),
    )
    uses_outer = node("model.p.a", depends_on_macros=("macro.p.outer",))
    unrelated = node("model.p.b", depends_on_macros=("macro.p.other",))
    child = node("model.p.c", depends_on_nodes=("model.p.a",))
    other = macro("macro.p.other", "z")
    prior = graph(uses_outer, unrelated, child, macros=(*macros, other))
    changed_inner = (macros[0], macros[1], macro("macro.p.inner", "i2"))
    new = graph(uses_outer, unrelated, child, macros=(*changed_inner, other))

    assert modified_macros(prior, new) == {"macro.p.inner"}
    assert modified_nodes(prior, new) == {"model.p.a"}
    assert modified_nodes(prior, new, aspect="macros") == {"model.p.a"}
    assert modified_nodes(prior, new, aspect="body") == set()
    assert state_modified_plus(prior, new) == {"model.p.a", "model.p.c"}
    d = diff(prior, new)
    assert d.macros_changed == ("macro.p.inner",)
    assert [(c.unique_id, c.aspects, c.modified) for c in d.changed] == [("model.p.a", ("macros",), True)]


def test_macro_added_or_removed_counts_as_modified_and_cycles_terminate() -> None:
    a = macro("macro.p.a", "a", "macro.p.b")
    b = macro("macro.p.b", "b", "macro.p.a")  # a cycle (dbt tolerates it through its visited list)
    user = node("model.p.m", depends_on_macros=("macro.p.a",))
    prior = graph(user, macros=(a, b))
    added = graph(user, macros=(a, b, macro("macro.p.new")))
    assert modified_nodes(prior, added) == set()
    assert diff(prior, added).macros_added == ("macro.p.new",)

    new_dep = replace(user, depends_on_macros=("macro.p.a", "macro.p.new"))
    assert modified_nodes(graph(user, macros=(a, b)), graph(new_dep, macros=(a, b, macro("macro.p.new")))) == {
        "model.p.m"
    }

    removed = graph(user, macros=(a, macro("macro.p.b", "b", "macro.p.a", "macro.p.gone")))
    before = graph(user, macros=(a, macro("macro.p.b", "b", "macro.p.a", "macro.p.gone"), macro("macro.p.gone")))
    assert modified_nodes(before, removed) == {"model.p.m"}
    assert diff(before, removed).macros_removed == ("macro.p.gone",)


# ------------------------------------------------------------------------------------------ state:modified+


def test_state_modified_plus_follows_children_of_every_type() -> None:
    m = node("model.p.m")
    test = replace(GENERIC, depends_on_nodes=("model.p.m",))
    downstream = node("model.p.d", depends_on_nodes=("model.p.m", "seed.p.s"))
    exposure = replace(EXPOSURE, depends_on_nodes=("model.p.d",))
    analysis = node("analysis.p.an", depends_on_nodes=("model.p.d",))
    unit = node("unit_test.p.d.t", checksum="c", depends_on_nodes=("model.p.d",))
    untouched = node("model.p.u", depends_on_nodes=("seed.p.s",))
    nodes = (m, test, downstream, exposure, analysis, unit, untouched, node("seed.p.s"))
    prior = graph(*nodes)
    new = graph(replace(m, body_hash="edited"), *nodes[1:])
    expected = {"model.p.m", test.unique_id, "model.p.d", EXPOSURE.unique_id, unit.unique_id}
    assert state_modified_plus(prior, new) == expected
    assert state_modified_plus(prior, new, resource_types=DBT_LS_RESOURCE_TYPES | {"analysis"}) == expected | {
        "analysis.p.an"
    }


# ------------------------------------------------------------------------------------------ renames in the diff


def test_rename_keeps_the_identity_and_is_not_added_or_removed() -> None:
    seed = node("seed.p.raw")
    old = node("model.p.orders", depends_on_nodes=("seed.p.raw",), original_file_path="models/orders.sql")
    new_node = node("model.p.fct_orders", depends_on_nodes=("seed.p.raw",), body_hash=old.body_hash)
    prior, new = graph(seed, old), graph(seed, new_node)
    prior_ids = assign_identities(None, {}, prior).ids
    identities = assign_identities(prior, prior_ids, new)
    d = diff_graphs(prior, new, identities)
    assert d.added == ()
    assert d.removed == ()
    assert [(r.old_unique_id, r.new_unique_id, r.node_uuid) for r in d.renamed] == [
        ("model.p.orders", "model.p.fct_orders", prior_ids["model.p.orders"])
    ]
    assert identities.ids["model.p.fct_orders"] == prior_ids["model.p.orders"]
    (change,) = d.changed
    assert change.unique_id == "model.p.fct_orders"
    assert change.node_uuid == prior_ids["model.p.orders"]
    assert "fqn" in change.aspects
    assert "body" not in change.aspects


def test_removed_and_added_without_a_match() -> None:
    prior, new = graph(node("model.p.a")), graph(node("model.p.b"))
    d = diff(prior, new)
    assert (d.added, d.removed, d.renamed) == (("model.p.b",), ("model.p.a",), ())


def test_prior_none_adds_everything() -> None:
    new = graph(node("model.p.b"), node("model.p.a"), macros=(macro("macro.p.z"), macro("macro.p.y")))
    d = diff_graphs(None, new, assign_identities(None, {}, new))
    assert d.added == ("model.p.a", "model.p.b")
    assert d.macros_added == ("macro.p.y", "macro.p.z")
    assert not d.is_empty


def test_every_reported_aspect_is_in_the_vocabulary() -> None:
    old = replace(MODEL, extra={"x": 1}, relation_name="a")
    new = replace(old, extra={"x": 2}, relation_name="b", name="m2", language="python")
    assert set(node_aspects(old, new)) <= ASPECTS


# ------------------------------------------------------------------------------------------ properties


NAMES = st.sampled_from([f"n{i}" for i in range(12)])


@st.composite
def graphs(draw: st.DrawFn) -> LogicalGraph:
    """A random DAG of models, seeds and tests with a few shared bodies (so renames can match)."""
    names = draw(st.lists(NAMES, min_size=1, max_size=10, unique=True))
    nodes: list[GraphNode] = []
    for i, name in enumerate(names):
        rtype = draw(st.sampled_from(["model", "model", "seed", "test"]))
        parents = (
            draw(st.lists(st.sampled_from([n.unique_id for n in nodes]), max_size=3, unique=True))
            if nodes and rtype != "seed"
            else []
        )
        body = draw(st.sampled_from(["b1", "b2", f"b-{i}"]))
        nodes.append(
            node(
                f"{rtype}.p.{name}",
                body_hash=body if rtype != "seed" else "",
                checksum=f"sha256:{body}" if rtype == "seed" else "",
                depends_on_nodes=tuple(parents),
                tags=tuple(draw(st.lists(st.sampled_from(["a", "b"]), max_size=1))),
            )
        )
    return graph(*nodes)


def roundtrip(g: LogicalGraph) -> LogicalGraph:
    """An equal graph built from scratch (as a re-ingestion decodes it), not the same objects."""
    return msgspec.json.decode(msgspec.json.encode(g), type=LogicalGraph)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_a_graph_diffed_with_itself_is_empty(g: LogicalGraph) -> None:
    ids = assign_identities(None, {}, g).ids
    again = roundtrip(g)
    identities = assign_identities(g, ids, again)
    assert identities.ids == ids
    d = diff_graphs(g, again, identities)
    assert d.is_empty, d
    assert modified_nodes(g, again) == set()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), graphs())
def test_diff_is_deterministic(a: LogicalGraph, b: LogicalGraph) -> None:
    counter = iter(range(10**6))

    def seq() -> uuid.UUID:
        return uuid.UUID(int=next(counter))

    ids = assign_identities(None, {}, a, new_uuid=seq).ids
    first = assign_identities(a, ids, b, new_uuid=seq)
    second = assign_identities(roundtrip(a), dict(reversed(ids.items())), roundtrip(b), new_uuid=seq)
    d1, d2 = diff_graphs(a, b, first), diff_graphs(roundtrip(a), roundtrip(b), second)
    assert first.renames == second.renames
    # fresh uuids differ between the runs; everything else is identical
    assert (d1.added, d1.removed, d1.renamed) == (d2.added, d2.removed, d2.renamed)
    assert [(c.unique_id, c.aspects, c.modified) for c in d1.changed] == [
        (c.unique_id, c.aspects, c.modified) for c in d2.changed
    ]
    assert msgspec.json.encode(d1) == msgspec.json.encode(diff_graphs(a, b, first))
    assert list(d1.added) == sorted(d1.added)
    assert list(d1.removed) == sorted(d1.removed)
    assert [c.unique_id for c in d1.changed] == sorted(c.unique_id for c in d1.changed)
    for change in d1.changed:
        assert list(change.aspects) == sorted(change.aspects)
        assert set(change.aspects) <= ASPECTS
        assert change.modified == bool(set(change.aspects) & MODIFYING_ASPECTS)
    # every prior identity is either kept, renamed or removed; every new node is kept, renamed or added
    renamed_new = {r.new_unique_id for r in d1.renamed}
    assert set(d1.added) | renamed_new | (a.nodes.keys() & b.nodes.keys()) == set(b.nodes)


# ------------------------------------------------------------------------------------------ speed


def big_graph(n: int = 10_000) -> LogicalGraph:
    nodes = []
    for i in range(n):
        parents = tuple(f"model.p.m{j}" for j in (i // 2, i // 3) if j < i and i > 0)
        nodes.append(
            node(
                f"model.p.m{i}",
                depends_on_nodes=parents,
                depends_on_macros=("macro.p.a",),
                unrendered_config={"materialized": "table", "tags": ["x"]},
                config={"materialized": "table", "tags": ["x"], "persist_docs": {}},
                columns=tuple(Column(name=f"c{k}", description="d") for k in range(8)),
                description="a model",
            )
        )
    return graph(*nodes, macros=(macro("macro.p.a"),))


def test_unchanged_10k_graph_diffs_in_well_under_100_ms() -> None:
    prior = big_graph()
    new = roundtrip(prior)  # equal, not identical: every node is compared field by field
    identities = assign_identities(None, {}, new)
    best = min(_timed(lambda: diff_graphs(prior, new, identities)) for _ in range(3))
    assert best < 0.1, f"{best * 1000:.1f} ms"
    best_modified = min(_timed(lambda: modified_nodes(prior, new)) for _ in range(3))
    assert best_modified < 0.1, f"{best_modified * 1000:.1f} ms"


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_column_tag_order_is_no_change() -> None:
    # dbt merges column tags through a set: their order varies between two parses of the same project
    base = replace(MODEL, columns=(Column(name="id", tags=("a", "b")),))
    d = diff(graph(base), graph(replace(base, columns=(Column(name="id", tags=("b", "a")),))))
    assert d.is_empty
    assert single_change(base, replace(base, columns=(Column(name="id", tags=("a", "c")),)))[0] == ("columns",)


def test_config_keys_a_type_does_not_compare_are_informational() -> None:
    # a test's config compares only outcome keys: 'severity' explains itself, 'enabled' is 'other'
    changed = replace(GENERIC, unrendered_config={"severity": "warn", "enabled": False})
    aspects, modified, _ = single_change(GENERIC, changed)
    assert aspects == ("configs", "other")
    assert modified
    aspects, _, _ = single_change(MODEL, replace(MODEL, unrendered_config={"materialized": "table", "tags": ["t"]}))
    assert aspects == ("configs", "tags")
