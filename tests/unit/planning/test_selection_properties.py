"""Properties of the selection engine on random DAGs (generated LogicalGraphs): set algebra, graph operators,
exclusion and determinism hold for any graph and any expression."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.graph import ArtifactInfo, GraphNode, LogicalGraph
from contracts.graph import TestMetadata as GenericTest
from services.planning.selection.engine import ALL_RESOURCE_TYPES, Selector

INFO = ArtifactInfo(
    kind="manifest",
    schema_version=12,
    dbt_schema_version="https://schemas.getdbt.com/dbt/manifest/v12.json",
    project_name="p",
)
TAGS = ("a", "b", "c")
FOLDERS = ("staging", "marts")


@st.composite
def graphs(draw: st.DrawFn) -> LogicalGraph:
    """Models m0..mN (each reads some earlier ones), sources, and tests on one or two models."""
    size = draw(st.integers(min_value=1, max_value=14))
    nodes: dict[str, GraphNode] = {}
    sources = [f"source.p.raw.s{i}" for i in range(draw(st.integers(min_value=0, max_value=2)))]
    for uid in sources:
        name = uid.rsplit(".", 1)[1]
        nodes[uid] = GraphNode(
            unique_id=uid,
            resource_type="source",
            name=name,
            package_name="p",
            source_name="raw",
            fqn=("p", "raw", name),
            original_file_path="models/raw.yml",
        )
    models = [f"model.p.m{i}" for i in range(size)]
    for i, uid in enumerate(models):
        parents = draw(st.lists(st.sampled_from(models[:i] + sources), unique=True, max_size=3)) if i or sources else []
        folder = draw(st.sampled_from(FOLDERS))
        nodes[uid] = GraphNode(
            unique_id=uid,
            resource_type="model",
            name=f"m{i}",
            package_name="p",
            fqn=("p", folder, f"m{i}"),
            original_file_path=f"models/{folder}/m{i}.sql",
            depends_on_nodes=tuple(parents),
            tags=tuple(draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=2))),
        )
    for j in range(draw(st.integers(min_value=0, max_value=6))):
        parents = draw(st.lists(st.sampled_from(models), unique=True, min_size=1, max_size=2))
        uid = f"test.p.t{j}"
        nodes[uid] = GraphNode(
            unique_id=uid,
            resource_type="test",
            name=f"t{j}",
            package_name="p",
            fqn=("p", "t", f"t{j}"),
            original_file_path="models/schema.yml",
            depends_on_nodes=tuple(parents),
            test_metadata=GenericTest(name="not_null" if j % 2 else "relationships"),
        )
    return LogicalGraph(info=INFO, nodes=nodes)


def plain_atoms(graph: LogicalGraph) -> st.SearchStrategy[str]:
    """Criteria without graph operators."""
    names = sorted({n.name for n in graph.nodes.values() if n.resource_type == "model"})
    return st.sampled_from(
        [
            *names,
            *(f"tag:{t}" for t in TAGS),
            "staging",
            "path:models/marts",
            "resource_type:test",
            "source:raw",
            "test_name:not_null",
            "nothing",
        ]
    )


def atoms(graph: LogicalGraph) -> st.SearchStrategy[str]:
    """Criteria with or without graph operators."""
    plain = plain_atoms(graph)
    return st.builds(
        lambda base, up, down: f"{up}{base}{'' if up == '@' else down}",
        plain,
        st.sampled_from(["", "+", "1+", "2+", "@"]),
        st.sampled_from(["", "+", "+1"]),
    )


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _selection(data: st.DataObject) -> tuple[Selector, str, str, str]:
    graph = data.draw(graphs())
    atom = atoms(graph)
    return Selector(graph), data.draw(atom), data.draw(atom), data.draw(atom)


@SETTINGS
@given(st.data())
def test_union_is_commutative_and_associative(data: st.DataObject) -> None:
    engine, a, b, c = _selection(data)
    assert engine.select(f"{a} {b}") == engine.select(f"{b} {a}")
    assert engine.select([f"{a} {b}", c]) == engine.select([a, f"{b} {c}"]) == engine.select(f"{c} {b} {a}")
    assert set(engine.select(f"{a} {b}")) == set(engine.select(a)) | set(engine.select(b))


@SETTINGS
@given(st.data())
def test_intersection_is_commutative_and_associative(data: st.DataObject) -> None:
    engine, a, b, c = _selection(data)
    assert engine.select(f"{a},{b}") == engine.select(f"{b},{a}")
    left = {"definition": {"intersection": [{"intersection": [a, b]}, c]}}
    right = {"definition": {"intersection": [a, {"intersection": [b, c]}]}}
    graph = engine.graph
    with_selectors = Selector(LogicalGraph(info=graph.info, nodes=graph.nodes, selectors={"l": left, "r": right}))
    assert with_selectors.select(selector="l") == with_selectors.select(selector="r") == engine.select(f"{a},{b},{c}")
    assert set(engine.select(f"{a},{b}")) == set(engine.select(a)) & set(engine.select(b))


@SETTINGS
@given(st.data())
def test_exclude_is_a_set_difference_of_the_selections(data: st.DataObject) -> None:
    engine, a, b, _ = _selection(data)
    assert engine.select(a, exclude=b) == sorted(set(engine.select(a)) - set(engine.select(b)))
    everything = engine.select(resource_types=ALL_RESOURCE_TYPES)
    assert engine.select(exclude=b, resource_types=ALL_RESOURCE_TYPES) == sorted(
        set(everything) - set(engine.select(b, resource_types=ALL_RESOURCE_TYPES))
    )


@SETTINGS
@given(st.data())
def test_graph_operators_grow_the_selection_and_depth_limits_it(data: st.DataObject) -> None:
    engine, _, _, _ = _selection(data)
    base = data.draw(plain_atoms(engine.graph))
    plain = set(engine.select(base))
    up, down = set(engine.select(f"+{base}")), set(engine.select(f"{base}+"))
    assert plain <= up
    assert plain <= down
    assert plain <= set(engine.select(f"1+{base}")) <= set(engine.select(f"2+{base}")) <= up
    assert plain <= set(engine.select(f"{base}+1")) <= set(engine.select(f"{base}+2")) <= down
    assert down <= set(engine.select(f"@{base}"))
    assert set(engine.select(f"0+{base}+0")) == plain


@SETTINGS
@given(st.data())
def test_selection_is_deterministic(data: st.DataObject) -> None:
    engine, a, b, c = _selection(data)
    expression = f"{a} {b},{c}"
    first = engine.select(expression, exclude=c)
    assert first == engine.select(expression, exclude=c)
    assert first == sorted(first)
    graph = engine.graph
    shuffled = list(graph.nodes.items())
    random.Random(data.draw(st.integers())).shuffle(shuffled)
    again = Selector(LogicalGraph(info=graph.info, nodes=dict(shuffled)))
    assert again.select(expression, exclude=c) == first
