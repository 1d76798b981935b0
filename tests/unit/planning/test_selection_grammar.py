"""The selection grammar and the engine's contract: parse trees, syntax errors with their position, YAML
selector shapes, the errors for unknown methods/selectors and missing state, empty selections."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.graph import ArtifactInfo, GraphNode, LogicalGraph
from services.planning.selection.engine import (
    ALL_RESOURCE_TYPES,
    DBT_LS_RESOURCE_TYPES,
    MissingStateError,
    Selector,
    SelectorSyntaxError,
    UnknownSelectorError,
    resource_types_from_args,
    select,
)
from services.planning.selection.grammar import Criterion, Group, parse_criterion, parse_difference, parse_union
from services.shared.errors import ContractViolationError

INFO = ArtifactInfo(kind="manifest", schema_version=12, dbt_schema_version="v12", project_name="p")


def _node(uid: str, *parents: str, **fields: Any) -> GraphNode:
    rtype, package, *rest = uid.split(".")
    name = rest[-1]
    folder = "staging" if name.startswith("stg") else "marts"
    defaults: dict[str, Any] = {
        "fqn": (package, folder, name),
        "original_file_path": f"models/{folder}/{name}.sql",
    }
    defaults.update(fields)
    return GraphNode(
        unique_id=uid, resource_type=rtype, name=name, package_name=package, depends_on_nodes=parents, **defaults
    )


GRAPH = LogicalGraph(
    info=INFO,
    nodes={
        n.unique_id: n
        for n in (
            _node("model.p.stg_a", tags=("staging",)),
            _node("model.p.stg_b", tags=("staging",)),
            _node("model.p.mart", "model.p.stg_a", "model.p.stg_b", tags=("nightly",)),
            _node("test.p.not_null_mart", "model.p.mart", fqn=("p", "not_null_mart")),
            _node("test.p.rel_mart_stg_a", "model.p.mart", "model.p.stg_a", fqn=("p", "rel_mart_stg_a")),
        )
    },
    selectors={
        "nightly": {"name": "nightly", "definition": {"method": "tag", "value": "nightly"}},
        "staging_default": {"name": "staging_default", "default": True, "definition": "tag:staging"},
        "loop": {"name": "loop", "definition": {"method": "selector", "value": "loop"}},
        "bad": {"name": "bad", "definition": {"method": "bogus", "value": "x"}},
    },
)


def test_union_of_intersections_and_operators() -> None:
    spec = parse_union(["a+ 2+b,@c d+3"])
    assert spec.kind == "union"
    first, second, third = spec.components
    assert isinstance(first, Group)
    assert isinstance(second, Group)
    assert isinstance(third, Group)
    assert [len(g.components) for g in (first, second, third)] == [1, 2, 1]
    a = first.components[0]
    assert isinstance(a, Criterion)
    assert (a.value, a.children, a.children_depth) == ("a", True, None)
    b, c = second.components
    assert isinstance(b, Criterion)
    assert (b.parents, b.parents_depth, b.method) == (True, 2, "fqn")
    assert isinstance(c, Criterion)
    assert c.childrens_parents
    d = third.components[0]
    assert isinstance(d, Criterion)
    assert d.children_depth == 3


@pytest.mark.parametrize(
    ("raw", "method", "arguments", "value"),
    [
        ("tag:nightly", "tag", (), "nightly"),
        ("config.materialized:table", "config", ("materialized",), "table"),
        ("config.meta.owner:x", "config", ("meta", "owner"), "x"),
        ("state:modified.body", "state", (), "modified.body"),
        ("models/staging", "path", (), "models/staging"),
        ("dim.SQL", "file", (), "dim.SQL"),
        ("marts.*", "fqn", (), "marts.*"),
        ("source:a:b", "source", (), "a:b"),
        ("a+b", "fqn", (), "a+b"),
    ],
)
def test_criterion_methods(raw: str, method: str, arguments: tuple[str, ...], value: str) -> None:
    criterion = parse_criterion(raw)
    assert (criterion.method, criterion.arguments, criterion.value) == (method, arguments, value)


@pytest.mark.parametrize(
    ("expression", "position", "reason"),
    [
        ("foo:bar", 0, "unknown selection method 'foo'"),
        ("tag:a bogus.x:y", 6, "unknown selection method 'bogus'"),
        ("tag:a,@b+", 8, '"@" prefix and a "+" suffix'),
        ("a b,@stg_a+2", 10, '"@" prefix'),
        ("tag:a\nb", 5, "line break"),
    ],
)
def test_syntax_errors_point_at_the_culprit(expression: str, position: int, reason: str) -> None:
    with pytest.raises(SelectorSyntaxError) as caught:
        parse_union([expression])
    error = caught.value
    assert isinstance(error, ContractViolationError)
    assert (error.position, error.expression) == (position, expression)
    assert reason in error.message
    assert repr(expression) in error.message
    if "\n" not in expression:
        lines = error.message.splitlines()
        assert lines[-2] == "  " + expression
        assert lines[-1] == "  " + " " * position + "^"


def test_value_errors_point_at_the_value() -> None:
    with pytest.raises(SelectorSyntaxError) as caught:
        select(GRAPH, "tag:a resource_type:bogus")
    assert caught.value.position == len("tag:a resource_type:")
    with pytest.raises(SelectorSyntaxError, match="test_type"):
        select(GRAPH, "test_type:integration")


def test_unknown_method_is_named() -> None:
    with pytest.raises(ContractViolationError, match="'bogus'"):
        select(GRAPH, "bogus:x")
    with pytest.raises(ContractViolationError, match="'bogus'"):
        select(GRAPH, selector="bad")


def test_nothing_matched_is_an_empty_list() -> None:
    assert select(GRAPH, "no_such_model") == []
    assert select(GRAPH, "tag:none+") == []
    assert select(GRAPH, "") == []


def test_state_methods_need_their_reference() -> None:
    for expression in ("state:modified", "result:error", "source_status:fresher"):
        with pytest.raises(MissingStateError):
            select(GRAPH, expression)
    assert select(GRAPH, "state:modified", state=GRAPH) == []
    assert select(GRAPH, "state:new", state=GRAPH) == []
    assert select(GRAPH, "result:error", results={"model.p.mart": "error"}) == [
        "model.p.mart",
        "test.p.not_null_mart",
        "test.p.rel_mart_stg_a",
    ]


def test_indirect_selection_modes() -> None:
    engine = Selector(GRAPH)
    assert engine.select("mart") == ["model.p.mart", "test.p.not_null_mart", "test.p.rel_mart_stg_a"]
    assert engine.select("mart", indirect_selection="cautious") == ["model.p.mart", "test.p.not_null_mart"]
    assert engine.select("mart", indirect_selection="buildable") == engine.select("mart")
    assert engine.select("mart", indirect_selection="empty") == ["model.p.mart"]
    # cautious: a union re-admits the test once both its parents are selected
    assert "test.p.rel_mart_stg_a" in engine.select("mart stg_a", indirect_selection="cautious")
    # eager: excluding a model excludes the tests that came with it
    assert engine.select("tag:nightly tag:staging", exclude="mart") == ["model.p.stg_a", "model.p.stg_b"]
    with pytest.raises(SelectorSyntaxError, match="indirect_selection"):
        engine.select("mart", indirect_selection="lazy")


def test_yaml_selectors() -> None:
    engine = Selector(GRAPH)
    assert engine.select(selector="nightly") == engine.select("tag:nightly")
    assert engine.select() == engine.select("tag:staging")  # the default: true selector
    assert engine.select(exclude="tag:nightly") != engine.select()  # --exclude alone: no default selector
    with pytest.raises(UnknownSelectorError, match="'missing'"):
        engine.select(selector="missing")
    with pytest.raises(SelectorSyntaxError, match="reference each other"):
        engine.select(selector="loop")
    with pytest.raises(ContractViolationError, match="--selector"):
        engine.select("mart", selector="nightly")


def test_default_selection_and_resource_types() -> None:
    spec = parse_difference(None, None)
    assert spec.kind == "difference"
    assert resource_types_from_args(None) == DBT_LS_RESOURCE_TYPES
    assert resource_types_from_args(["all"]) == ALL_RESOURCE_TYPES
    assert resource_types_from_args(["model", "test"], ["test"]) == {"model"}
    assert resource_types_from_args(["default"], ["source"]) == DBT_LS_RESOURCE_TYPES - {"source"}
    assert select(GRAPH, "mart", resource_types={"test"}) == ["test.p.not_null_mart", "test.p.rel_mart_stg_a"]


def test_path_globs_the_implied_project_folder() -> None:
    assert select(GRAPH, "path:models/staging", indirect_selection="empty") == ["model.p.stg_a", "model.p.stg_b"]
    assert select(GRAPH, "path:models/*/stg_a.sql") == ["model.p.stg_a", "test.p.rel_mart_stg_a"]
    assert select(GRAPH, "path:**", indirect_selection="empty") == sorted(GRAPH.nodes)
    assert select(GRAPH, "path:models/mar") == []
    with pytest.raises(SelectorSyntaxError):
        select(GRAPH, "path:/etc")
