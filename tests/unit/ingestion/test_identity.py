"""Stable node identity: kept by unique_id, carried over a rename (same code, same parents), fresh otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec
from hypothesis import HealthCheck, given, settings

from contracts.graph import LogicalGraph
from services.ingestion.diff import diff_graphs
from services.ingestion.identity import assign_identities, topological_generations, version_siblings
from tests.unit.ingestion.test_diff import graph, graphs, node, replace, roundtrip


def sequence() -> Callable[[], uuid.UUID]:
    counter = iter(range(1, 10**6))
    return lambda: uuid.UUID(int=next(counter))


def test_first_ingestion_gives_every_node_a_distinct_uuid7() -> None:
    g = graph(node("model.p.a"), node("model.p.b", depends_on_nodes=("model.p.a",)))
    identities = assign_identities(None, {}, g)
    assert set(identities.ids) == {"model.p.a", "model.p.b"}
    assert len(set(identities.ids.values())) == 2
    assert all(u.version == 7 for u in identities.ids.values())
    assert identities.renames == ()


def test_same_unique_id_keeps_its_uuid_whatever_changed() -> None:
    a = node("model.p.a")
    prior = graph(a)
    ids = assign_identities(None, {}, prior).ids
    new = graph(replace(a, body_hash="rewritten", depends_on_nodes=("seed.p.s",)), node("seed.p.s"))
    identities = assign_identities(prior, ids, new)
    assert identities.ids["model.p.a"] == ids["model.p.a"]
    assert identities.ids["seed.p.s"] != ids["model.p.a"]
    assert identities.renames == ()


def test_rename_needs_same_body_type_and_parents() -> None:
    seed = node("seed.p.raw")
    old = node("model.p.orders", depends_on_nodes=("seed.p.raw",))
    prior = graph(seed, old, node("seed.p.other"))
    ids = assign_identities(None, {}, prior).ids

    def renamed_to(new_node_fields: dict[str, object], uid: str = "model.p.fct_orders") -> bool:
        fields = {"body_hash": old.body_hash, "depends_on_nodes": ("seed.p.raw",), **new_node_fields}
        new = graph(seed, node("seed.p.other"), node(uid, **fields))
        identities = assign_identities(prior, ids, new)
        return identities.ids[uid] == ids["model.p.orders"]

    assert renamed_to({})
    assert not renamed_to({"body_hash": "different"})
    assert not renamed_to({"depends_on_nodes": ("seed.p.other",)})
    assert not renamed_to({"depends_on_nodes": ()})
    assert not renamed_to({}, uid="snapshot.p.fct_orders")  # another resource type


def test_no_code_no_rename() -> None:
    old = node("model.p.a", body_hash="")
    prior = graph(old)
    ids = assign_identities(None, {}, prior).ids
    identities = assign_identities(prior, ids, graph(node("model.p.b", body_hash="")))
    assert identities.renames == ()


def test_seed_renamed_by_checksum() -> None:
    prior = graph(node("seed.p.raw_orders"))
    ids = assign_identities(None, {}, prior).ids
    identities = assign_identities(prior, ids, graph(node("seed.p.orders_raw", checksum="sha256:raw_orders")))
    assert [(r.old_unique_id, r.new_unique_id) for r in identities.renames] == [
        ("seed.p.raw_orders", "seed.p.orders_raw")
    ]


def test_rename_chain_parent_and_children_renamed_together() -> None:
    src = node("source.p.raw.orders")
    stg = node("model.p.stg_orders", depends_on_nodes=("source.p.raw.orders",))
    fct = node("model.p.fct_orders", depends_on_nodes=("model.p.stg_orders",))
    test = node(
        "test.p.not_null_fct_orders_id.abc",
        body_hash="not_null",
        column_name="id",
        depends_on_nodes=("model.p.fct_orders",),
    )
    prior = graph(src, stg, fct, test)
    ids = assign_identities(None, {}, prior).ids

    stg2 = node("model.p.base_orders", body_hash=stg.body_hash, depends_on_nodes=("source.p.raw.orders",))
    fct2 = node("model.p.orders", body_hash=fct.body_hash, depends_on_nodes=("model.p.base_orders",))
    test2 = node(
        "test.p.not_null_orders_id.def", body_hash="not_null", column_name="id", depends_on_nodes=("model.p.orders",)
    )
    new = graph(src, stg2, fct2, test2)
    identities = assign_identities(prior, ids, new)
    assert [(r.old_unique_id, r.new_unique_id) for r in identities.renames] == [
        ("model.p.fct_orders", "model.p.orders"),
        ("model.p.stg_orders", "model.p.base_orders"),
        ("test.p.not_null_fct_orders_id.abc", "test.p.not_null_orders_id.def"),
    ]
    assert identities.ids["model.p.orders"] == ids["model.p.fct_orders"]
    assert identities.ids["test.p.not_null_orders_id.def"] == ids["test.p.not_null_fct_orders_id.abc"]
    d = diff_graphs(prior, new, identities)
    assert d.added == ()
    assert d.removed == ()
    assert len(d.renamed) == 3


def test_child_of_a_new_parent_is_not_a_rename() -> None:
    prior = graph(node("model.p.a"), node("model.p.b", depends_on_nodes=("model.p.a",)))
    ids = assign_identities(None, {}, prior).ids
    new = graph(
        node("model.p.a2", body_hash="new code"),
        node("model.p.b2", body_hash="body-of-b", depends_on_nodes=("model.p.a2",)),
    )
    assert assign_identities(prior, ids, new).renames == ()


def test_ambiguous_renames_are_resolved_by_path_then_unique_id() -> None:
    # two identical models moved: the closest original_file_path wins, then unique_id order
    prior = graph(
        node("model.p.x", body_hash="same", original_file_path="models/finance/x.sql"),
        node("model.p.y", body_hash="same", original_file_path="models/marketing/y.sql"),
    )
    ids = assign_identities(None, {}, prior).ids
    new = graph(
        node("model.p.a", body_hash="same", original_file_path="models/marketing/a.sql"),
        node("model.p.b", body_hash="same", original_file_path="models/finance/b.sql"),
    )
    identities = assign_identities(prior, ids, new)
    assert identities.ids["model.p.b"] == ids["model.p.x"]
    assert identities.ids["model.p.a"] == ids["model.p.y"]

    # three candidates for one: the nearest path; at equal distance the smallest old unique_id
    prior = graph(*(node(f"model.p.{n}", body_hash="same", original_file_path=f"models/{n}.sql") for n in "cab"))
    ids = assign_identities(None, {}, prior).ids
    identities = assign_identities(
        prior, ids, graph(node("model.p.z", body_hash="same", original_file_path="models/z.sql"))
    )
    assert [(r.old_unique_id, r.new_unique_id) for r in identities.renames] == [("model.p.a", "model.p.z")]


def test_test_renames_are_matched_by_column() -> None:
    model = node("model.p.m")
    t1 = node("test.p.nn_m_a", body_hash="not_null", column_name="a", depends_on_nodes=("model.p.m",))
    t2 = node("test.p.nn_m_b", body_hash="not_null", column_name="b", depends_on_nodes=("model.p.m",))
    prior = graph(model, t1, t2)
    ids = assign_identities(None, {}, prior).ids
    n1 = node("test.p.zz_a", body_hash="not_null", column_name="a", depends_on_nodes=("model.p.m",))
    n2 = node("test.p.aa_b", body_hash="not_null", column_name="b", depends_on_nodes=("model.p.m",))
    identities = assign_identities(prior, ids, graph(model, n1, n2))
    assert identities.ids["test.p.zz_a"] == ids["test.p.nn_m_a"]
    assert identities.ids["test.p.aa_b"] == ids["test.p.nn_m_b"]


def test_unversioned_model_becoming_v1_keeps_its_identity() -> None:
    prior = graph(node("model.p.m"))
    ids = assign_identities(None, {}, prior).ids
    v1 = replace(node("model.p.m.v1", body_hash="body-of-m"), name="m", version="1", latest_version="1")
    identities = assign_identities(prior, ids, graph(v1))
    assert identities.ids["model.p.m.v1"] == ids["model.p.m"]


def test_version_siblings() -> None:
    v1 = replace(node("model.p.m.v1"), name="m", version="1")
    v2 = replace(node("model.p.m.v2"), name="m", version="2")
    v3 = replace(node("model.p.m.v3"), name="m", version="3")
    other_pkg = replace(node("model.q.m.v1"), name="m", version="1")
    plain = node("model.p.m")
    g = graph(v3, v1, v2, other_pkg, plain)
    assert version_siblings(g) == {
        "model.p.m.v1": ("model.p.m.v2", "model.p.m.v3"),
        "model.p.m.v2": ("model.p.m.v1", "model.p.m.v3"),
        "model.p.m.v3": ("model.p.m.v1", "model.p.m.v2"),
        "model.q.m.v1": (),
    }


def test_topological_generations_put_parents_first_and_survive_a_cycle() -> None:
    g = graph(
        node("model.p.c", depends_on_nodes=("model.p.a", "model.p.b")),
        node("model.p.b", depends_on_nodes=("model.p.a", "source.p.s.t")),
        node("model.p.a"),
    )
    assert topological_generations(g) == [["model.p.a"], ["model.p.b"], ["model.p.c"]]
    cyclic = graph(
        node("model.p.x", depends_on_nodes=("model.p.y",)),
        node("model.p.y", depends_on_nodes=("model.p.x",)),
        node("model.p.z"),
    )
    assert topological_generations(cyclic) == [["model.p.z"], ["model.p.x", "model.p.y"]]
    assert len(set(assign_identities(None, {}, cyclic).ids.values())) == 3


def test_colliding_uuid_generator_never_gives_two_nodes_one_uuid() -> None:
    prior = graph(node("model.p.a"))
    ids = {"model.p.a": uuid.UUID(int=1)}
    fresh = sequence()  # first yields UUID(int=1), already taken
    identities = assign_identities(
        prior, ids, graph(node("model.p.a"), node("model.p.b", body_hash="x")), new_uuid=fresh
    )
    assert identities.ids == {"model.p.a": uuid.UUID(int=1), "model.p.b": uuid.UUID(int=2)}


# ------------------------------------------------------------------------------------------ properties


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), graphs(), graphs())
def test_identities_are_stable_and_unique_across_reingestions(
    a: LogicalGraph, b: LogicalGraph, c: LogicalGraph
) -> None:
    ids_a = assign_identities(None, {}, a).ids
    prior, prior_ids = a, ids_a
    for new in (b, c, roundtrip(c)):
        identities = assign_identities(prior, prior_ids, new)
        assert set(identities.ids) == set(new.nodes)
        assert len(set(identities.ids.values())) == len(identities.ids)
        for uid in new.nodes.keys() & prior_ids.keys():
            assert identities.ids[uid] == prior_ids[uid]
        for rename in identities.renames:
            assert rename.old_unique_id in prior.nodes
            assert rename.old_unique_id not in new.nodes
            assert rename.new_unique_id not in prior_ids
            assert identities.ids[rename.new_unique_id] == prior_ids[rename.old_unique_id] == rename.node_uuid
        prior, prior_ids = new, identities.ids
    # re-ingesting the same graph changes nothing
    again = assign_identities(prior, prior_ids, roundtrip(prior))
    assert again.ids == prior_ids
    assert again.renames == ()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), graphs())
def test_renames_are_deterministic(a: LogicalGraph, b: LogicalGraph) -> None:
    ids = assign_identities(None, {}, a, new_uuid=sequence()).ids
    first = assign_identities(a, ids, b, new_uuid=sequence())
    # same inputs in another dict order: same renames and same uuids
    shuffled_nodes = dict(sorted(b.nodes.items(), reverse=True))
    shuffled = msgspec.structs.replace(b, nodes=shuffled_nodes)
    second = assign_identities(a, dict(sorted(ids.items(), reverse=True)), shuffled, new_uuid=sequence())
    assert first.renames == second.renames
    assert first.ids == second.ids
