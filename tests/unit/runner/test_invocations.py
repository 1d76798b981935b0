"""plan_invocations: grouping into builds, ordering, flags, exact selections, refusals, determinism."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.graph import ArtifactInfo, GraphNode, LogicalGraph
from contracts.plan import ExecutionPlan, ItemAction, PartitionWindow, PlanInputs, PlanItem, PlanTotals
from services.planning.selection.engine import ALL_RESOURCE_TYPES, Selector
from services.runner.invocations import (
    Invocation,
    PlanTranslationError,
    item_expression,
    plan_invocations,
    selection_args,
)

INFO = ArtifactInfo(kind="manifest", schema_version=12, dbt_schema_version="v12", project_name="p")
AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
DIRS = {
    "project_dir": Path("/w/project"),
    "profiles_dir": Path("/w/profiles"),
    "target_path": Path("/w/target"),
    "log_path": Path("/w/logs"),
}


def node(uid: str, *parents: str, fqn: Sequence[str] | None = None, version: str | None = None) -> GraphNode:
    rtype, package, *rest = uid.split(".")
    name = rest[0]
    default_fqn = (package, "models", *rest) if rtype == "model" else (package, *rest)
    return GraphNode(
        unique_id=uid,
        resource_type=rtype,
        name=name,
        package_name=package,
        fqn=tuple(fqn) if fqn is not None else default_fqn,
        depends_on_nodes=parents,
        version=version,
    )


def graph(*nodes: GraphNode) -> LogicalGraph:
    return LogicalGraph(info=INFO, nodes={n.unique_id: n for n in nodes})


def item(uid: str, action: ItemAction = "RUN", *, wave: int = 0, window: PartitionWindow | None = None) -> PlanItem:
    return PlanItem(
        node_uuid=uuid.uuid5(uuid.NAMESPACE_URL, uid),
        unique_id=uid,
        resource_type=uid.split(".", maxsplit=1)[0],
        action=action,
        wave=wave,
        window=window,
    )


def plan(*items: PlanItem) -> ExecutionPlan:
    numbered = [
        PlanItem(**{**{f: getattr(i, f) for f in i.__struct_fields__}, "order": n})
        for n, i in enumerate(sorted(items, key=lambda i: i.wave))
    ]
    return ExecutionPlan(
        inputs=PlanInputs(project_id="p", environment_id="dev", graph_version=1, as_of=AS_OF),
        items=tuple(numbered),
        totals=PlanTotals(),
    )


def window(day: int, days: int = 1) -> PartitionWindow:
    start = datetime(2026, 6, day, tzinfo=UTC)
    return PartitionWindow(
        start=start, end=start + timedelta(days=days), event_time="at", batch_size="day", batches=days
    )


def invocations(p: ExecutionPlan, g: LogicalGraph, **kwargs: object) -> list[Invocation]:
    return plan_invocations(p, g, threads=4, target="dev", **DIRS, **kwargs)  # type: ignore[arg-type]


def _evaluate(argv: Sequence[str], g: LogicalGraph) -> list[str]:
    """An argv's --select/--exclude evaluated by Lockgate's selection engine (what dbt would select)."""
    args = list(argv)
    groups: dict[str, list[str]] = {"--select": [], "--exclude": []}
    current: str | None = None
    for arg in args:
        if arg.startswith("--"):
            current = arg if arg in groups else None
        elif current is not None:
            groups[current].append(arg)
    assert args[args.index("--indirect-selection") + 1] == "empty"
    return Selector(g).select(
        groups["--select"],
        exclude=groups["--exclude"] or None,
        indirect_selection="empty",
        resource_types=ALL_RESOURCE_TYPES,
    )


CHAIN = graph(
    node("seed.p.raw"),
    node("model.p.stg", "seed.p.raw"),
    node("test.p.not_null_stg_id", "model.p.stg"),
    node("model.p.events", "model.p.stg"),
    node("model.p.view", "model.p.events"),
    node("model.p.mart", "model.p.view"),
    node("test.p.unique_mart_id", "model.p.mart"),
)


def test_one_wave_of_run_items_is_one_build_with_every_flag() -> None:
    p = plan(item("seed.p.raw"), item("model.p.stg"), item("test.p.not_null_stg_id"), item("model.p.mart"))
    [inv] = invocations(p, CHAIN, profile="lockgate_demo")
    assert inv.unique_ids == {"seed.p.raw", "model.p.stg", "test.p.not_null_stg_id", "model.p.mart"}
    assert inv.wave == 0
    assert inv.window is None
    assert inv.argv[0] == "build"
    assert inv.argv[1:6] == (
        "--select",
        "fqn:p.models.mart,resource_type:model",
        "fqn:p.models.stg,resource_type:model",
        "fqn:p.raw,resource_type:seed",
        "fqn:p.not_null_stg_id,resource_type:test",
    )
    assert _evaluate(inv.argv, CHAIN) == sorted(inv.unique_ids)
    flags = inv.argv[inv.argv.index("--target-path") :]
    assert flags == (
        "--target-path",
        "/w/target/000-wave0",
        "--threads",
        "4",
        "--target",
        "dev",
        "--profile",
        "lockgate_demo",
        "--project-dir",
        "/w/project",
        "--profiles-dir",
        "/w/profiles",
        "--log-path",
        "/w/logs",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    )
    assert "--full-refresh" not in inv.argv
    assert inv.target_path == Path("/w/target/000-wave0")
    assert inv.run_results == Path("/w/target/000-wave0/run_results.json")


def test_full_refresh_is_passed_when_asked() -> None:
    [inv] = invocations(plan(item("model.p.stg")), CHAIN, full_refresh=True)
    assert "--full-refresh" in inv.argv
    assert "--profile" not in inv.argv


def test_each_wave_is_one_build_in_wave_order() -> None:
    p = plan(
        item("model.p.mart", wave=2),
        item("seed.p.raw", wave=0),
        item("model.p.stg", wave=0),
        item("test.p.unique_mart_id", wave=2),
        item("model.p.events", wave=1),
    )
    invs = invocations(p, CHAIN)
    assert [(i.wave, sorted(i.unique_ids)) for i in invs] == [
        (0, ["model.p.stg", "seed.p.raw"]),
        (1, ["model.p.events"]),
        (2, ["model.p.mart", "test.p.unique_mart_id"]),
    ]
    assert [i.target_path.name for i in invs] == ["000-wave0", "001-wave1", "002-wave2"]
    assert len({i.target_path for i in invs}) == 3


def test_partial_items_run_in_their_window_between_their_upstream_and_downstream() -> None:
    june = window(1, days=3)
    p = plan(
        item("model.p.stg"),
        item("model.p.events", "PARTIAL", window=june),
        item("model.p.mart"),  # downstream of events through a view the plan skips
        item("model.p.view", "SKIP"),
        item("test.p.not_null_stg_id"),
    )
    invs = invocations(p, CHAIN)
    assert [sorted(i.unique_ids) for i in invs] == [
        ["model.p.stg", "test.p.not_null_stg_id"],
        ["model.p.events"],
        ["model.p.mart"],
    ]
    partial = invs[1]
    assert partial.window == june
    start = partial.argv.index("--event-time-start")
    assert partial.argv[start : start + 4] == (
        "--event-time-start",
        "2026-06-01T00:00:00",
        "--event-time-end",
        "2026-06-04T00:00:00",
    )
    assert partial.target_path.name == "001-wave0-partial"
    assert "--event-time-start" not in invs[0].argv
    assert "--event-time-start" not in invs[2].argv


def test_partial_items_with_the_same_window_share_a_build_and_other_windows_get_their_own() -> None:
    g = graph(node("model.p.a"), node("model.p.b"), node("model.p.c"))
    p = plan(
        item("model.p.a", "PARTIAL", window=window(1)),
        item("model.p.b", "PARTIAL", window=window(2)),
        item("model.p.c", "PARTIAL", window=window(1)),
    )
    invs = invocations(p, g)
    assert [sorted(i.unique_ids) for i in invs] == [["model.p.a", "model.p.c"], ["model.p.b"]]
    assert [i.window for i in invs] == [window(1), window(2)]


def test_event_times_are_utc_without_an_offset() -> None:
    paris = timezone(timedelta(hours=2))
    w = PartitionWindow(
        start=datetime(2026, 6, 1, 2, 30, tzinfo=paris),
        end=datetime(2026, 6, 2, 2, 30, tzinfo=paris),
        event_time="at",
        batch_size="hour",
        batches=24,
    )
    [inv] = invocations(plan(item("model.p.stg", "PARTIAL", window=w)), CHAIN)
    assert inv.argv[inv.argv.index("--event-time-start") + 1] == "2026-06-01T00:30:00"
    assert inv.argv[inv.argv.index("--event-time-end") + 1] == "2026-06-02T00:30:00"


def test_a_plan_that_executes_nothing_has_no_invocation() -> None:
    assert invocations(plan(item("model.p.stg", "SKIP"), item("seed.p.raw", "SKIP")), CHAIN) == []
    assert invocations(plan(), CHAIN) == []


VERSIONED = graph(
    node("model.p.prices.v1", fqn=("p", "marts", "prices", "v1"), version="1"),
    node("model.p.prices.v2", fqn=("p", "marts", "prices", "v2"), version="2"),
    node("model.p.prices_v2_daily", fqn=("p", "marts", "prices_v2_daily")),
    node("test.p.not_null_prices_v2_id", "model.p.prices.v2", fqn=("p", "marts", "not_null_prices_v2_id")),
)


def test_a_versioned_model_is_selected_by_its_fqn_with_the_version() -> None:
    assert item_expression(VERSIONED, "model.p.prices.v2") == "fqn:p.marts.prices.v2,resource_type:model"
    args = selection_args(VERSIONED, ["model.p.prices.v2"])
    assert "--exclude" not in args
    assert _evaluate(args, VERSIONED) == ["model.p.prices.v2"]
    # its test is only there when the plan lists it (indirect selection is empty)
    assert _evaluate(selection_args(VERSIONED, ["model.p.prices.v1", "test.p.not_null_prices_v2_id"]), VERSIONED) == [
        "model.p.prices.v1",
        "test.p.not_null_prices_v2_id",
    ]


def test_an_fqn_that_prefixes_another_is_made_exact_with_an_exclusion() -> None:
    # a model named like a folder: dbt's fqn method matches "p.marts.orders" as a prefix of the folder's models
    g = graph(
        node("model.p.orders", fqn=("p", "marts", "orders")),
        node("model.p.items", fqn=("p", "marts", "orders", "items")),
        node("model.p.lines", fqn=("p", "marts", "orders", "lines")),
    )
    assert Selector(g).select("fqn:p.marts.orders,resource_type:model") == [
        "model.p.items",
        "model.p.lines",
        "model.p.orders",
    ]
    args = selection_args(g, ["model.p.orders", "model.p.lines"])
    assert args[args.index("--exclude") + 1 :][:1] == ("fqn:p.marts.orders.items,resource_type:model",)
    assert _evaluate(args, g) == ["model.p.lines", "model.p.orders"]


def test_nodes_dbt_cannot_tell_apart_are_refused() -> None:
    g = graph(
        node("test.p.same_name.aaaa", fqn=("p", "same_name")),
        node("test.p.same_name.bbbb", fqn=("p", "same_name")),
    )
    with pytest.raises(PlanTranslationError, match=r"cannot tell these nodes apart.*test\.p\.same_name\.aaaa"):
        invocations(plan(item("test.p.same_name.aaaa")), g)


def test_an_item_missing_from_the_graph_is_refused() -> None:
    with pytest.raises(PlanTranslationError, match=r"'model\.p\.gone' is not in the graph"):
        invocations(plan(item("model.p.gone")), CHAIN)


def test_a_partial_item_without_a_window_is_refused() -> None:
    with pytest.raises(PlanTranslationError, match="has no window"):
        invocations(plan(item("model.p.stg", "PARTIAL")), CHAIN)


def test_a_plan_that_runs_a_node_before_its_upstream_is_refused() -> None:
    p = ExecutionPlan(
        inputs=PlanInputs(project_id="p", environment_id="dev", graph_version=1, as_of=AS_OF),
        items=(
            PlanItem(node_uuid=uuid.uuid4(), unique_id="model.p.mart", resource_type="model", action="RUN", order=0),
            PlanItem(node_uuid=uuid.uuid4(), unique_id="model.p.stg", resource_type="model", action="RUN", order=1),
        ),
        totals=PlanTotals(),
    )
    with pytest.raises(PlanTranslationError, match="before its upstream"):
        invocations(p, CHAIN)


def test_threads_must_be_positive() -> None:
    with pytest.raises(PlanTranslationError, match="threads"):
        plan_invocations(
            plan(item("model.p.stg")),
            CHAIN,
            threads=0,
            target="dev",
            project_dir=Path("/w/project"),
            profiles_dir=Path("/w/profiles"),
            target_path=Path("/w/target"),
            log_path=Path("/w/logs"),
        )


# -- properties over random DAGs and plans -------------------------------------------------------------------


@st.composite
def dags_and_plans(draw: st.DrawFn) -> tuple[LogicalGraph, ExecutionPlan]:
    size = draw(st.integers(1, 14))
    nodes: list[GraphNode] = []
    for i in range(size):
        parents = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        kind = draw(st.sampled_from(["model", "model", "model", "seed", "test"])) if i else "seed"
        if kind == "test" and not parents:
            kind = "model"
        # folders a/n0 and a/n1 make model n0 (or n1) of folder a an fqn prefix of their models
        folder = draw(st.sampled_from([("a",), ("b",), ("a", "n0"), ("a", "n1")]))
        fqn = ("p", *folder, f"n{i}") if kind == "model" else ("p", f"n{i}")
        nodes.append(node(f"{kind}.p.n{i}", *(nodes[j].unique_id for j in sorted(parents)), fqn=fqn))
    g = graph(*nodes)
    # waves never put a parent after its child: a node's wave is at least its parents'
    waves: dict[str, int] = {}
    items: list[PlanItem] = []
    days = draw(st.lists(st.integers(1, 3), min_size=size, max_size=size))
    for n, gnode in enumerate(nodes):
        action: ItemAction = draw(st.sampled_from(["RUN", "RUN", "SKIP", "PARTIAL"]))
        if gnode.resource_type != "model" and action == "PARTIAL":
            action = "RUN"
        floor = max((waves[parent] for parent in gnode.depends_on_nodes), default=0)
        waves[gnode.unique_id] = floor + draw(st.integers(0, 1))
        items.append(
            PlanItem(
                node_uuid=uuid.uuid5(uuid.NAMESPACE_URL, gnode.unique_id),
                unique_id=gnode.unique_id,
                resource_type=gnode.resource_type,
                action=action,
                wave=waves[gnode.unique_id],
                order=n,
                window=window(days[n]) if action == "PARTIAL" else None,
            )
        )
    ordered = sorted(items, key=lambda i: (i.wave, i.order))
    renumbered = tuple(
        PlanItem(**{**{f: getattr(i, f) for f in i.__struct_fields__}, "order": n}) for n, i in enumerate(ordered)
    )
    p = ExecutionPlan(
        inputs=PlanInputs(project_id="p", environment_id="dev", graph_version=1, as_of=AS_OF),
        items=renumbered,
        totals=PlanTotals(),
    )
    return g, p


@settings(max_examples=150, deadline=None)
@given(dags_and_plans())
def test_invocations_are_deterministic_exact_complete_and_ordered(case: tuple[LogicalGraph, ExecutionPlan]) -> None:
    g, p = case
    first = invocations(p, g)
    again = invocations(p, g, selector=Selector(g))
    assert [i.argv for i in first] == [i.argv for i in again]

    executed = {i.unique_id for i in p.items if i.action != "SKIP"}
    assert set().union(*(inv.unique_ids for inv in first)) == executed
    assert sum(len(inv.unique_ids) for inv in first) == len(executed)
    where = {uid: n for n, inv in enumerate(first) for uid in inv.unique_ids}
    item_of = {i.unique_id: i for i in p.items}
    for n, inv in enumerate(first):
        assert _evaluate(inv.argv, g) == sorted(inv.unique_ids)
        assert {item_of[uid].wave for uid in inv.unique_ids} == {inv.wave}
        assert {item_of[uid].window for uid in inv.unique_ids} == {inv.window}
        for uid in inv.unique_ids:
            for ancestor in _executed_ancestors(g, uid, executed):
                assert where[ancestor] <= n, (uid, ancestor)
    assert [inv.wave for inv in first] == sorted(inv.wave for inv in first)
    if (
        first
        and len({i.wave for i in p.items if i.action != "SKIP"}) == 1
        and all(i.action != "PARTIAL" for i in p.items)
    ):
        assert len(first) == 1


def _executed_ancestors(g: LogicalGraph, uid: str, executed: set[str]) -> set[str]:
    found: set[str] = set()
    stack = list(g.nodes[uid].depends_on_nodes)
    while stack:
        parent = stack.pop()
        if parent in executed:
            found.add(parent)
        else:
            stack.extend(g.nodes[parent].depends_on_nodes)
    return found
