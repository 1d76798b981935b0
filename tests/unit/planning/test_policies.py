"""Each built-in policy on small hand-built graphs, the precedence rules, the consistency pass and the registry.

The builders here (``node``, ``graph``, ``ran``, ``make_plan``) are shared by the other planning tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from contracts.graph import ArtifactInfo, Column, Contract, GraphNode, LogicalGraph, NodeResult, SourceFreshness
from contracts.plan import Action, Decision, ExecutionPlan, PartitionWindow, PlanInputs, PlanItem, PlanningSettings
from services.planning.planner import build_plan
from services.planning.policies import (
    PlanningError,
    PolicyContext,
    combine,
    reason,
    register_policy,
    registered_policies,
    unregister_policy,
)

AS_OF = datetime(2024, 3, 10, 15, 30, tzinfo=UTC)
INFO = ArtifactInfo(kind="manifest", schema_version=12, dbt_schema_version="v12", adapter_type="duckdb")


def node(
    uid: str,
    *parents: str,
    materialized: str | None = "table",
    body: str = "b",
    config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    contract: Contract | None = None,
    columns: Sequence[Column] = (),
) -> GraphNode:
    rtype = uid.split(".", 1)[0]
    if rtype in ("source", "exposure", "test"):
        materialized = None if rtype != "test" else "test"
    cfg = dict(config or {})
    if materialized is not None:
        cfg.setdefault("materialized", materialized)
    return GraphNode(
        unique_id=uid,
        resource_type=rtype,
        name=uid.rsplit(".", 1)[-1],
        package_name="p",
        fqn=("p", uid.rsplit(".", 1)[-1]),
        body_hash=body,
        materialized=materialized,
        config=cfg,
        unrendered_config={k: v for k, v in cfg.items() if k != "materialized"},
        meta=meta or {},
        depends_on_nodes=tuple(parents),
        contract=contract,
        columns=tuple(columns),
    )


def graph(*nodes: GraphNode) -> LogicalGraph:
    return LogicalGraph(info=INFO, nodes={n.unique_id: n for n in nodes})


def ran(status: str = "success", seconds: float = 10.0, at: str = "2024-03-09T12:00:00Z") -> NodeResult:
    return NodeResult(unique_id="", status=status, execution_time=seconds, completed_at=at)


def uuids(g: LogicalGraph) -> dict[str, uuid.UUID]:
    return {uid: uuid.uuid5(uuid.NAMESPACE_URL, uid) for uid in g.nodes}


def make_plan(
    g: LogicalGraph,
    selected: Iterable[str] | None = None,
    *,
    reference: LogicalGraph | None = None,
    history: Mapping[str, Sequence[NodeResult]] | None = None,
    freshness: Mapping[str, SourceFreshness] | None = None,
    settings: PlanningSettings | None = None,
    policies: Sequence[Any] | None = None,
    as_of: datetime = AS_OF,
) -> ExecutionPlan:
    return build_plan(
        graph=g,
        node_uuids=uuids(g),
        selected=list(g.nodes) if selected is None else list(selected),
        reference=reference,
        history=history or {},
        freshness=freshness or {},
        settings=settings or PlanningSettings(),
        policies=policies,
        inputs=PlanInputs(project_id="p", environment_id="dev", graph_version=2, state_reference=1, as_of=as_of),
    )


def item(plan: ExecutionPlan, uid: str) -> PlanItem:
    return next(i for i in plan.items if i.unique_id == uid)


def codes(plan: ExecutionPlan, uid: str) -> list[str]:
    return [r.code for r in item(plan, uid).reasons]


# -- skip_if_no_change -------------------------------------------------------------------------------------------

CHAIN = graph(
    node("source.p.raw.orders"),
    node("model.p.stg", "source.p.raw.orders", materialized="view"),
    node("model.p.orders", "model.p.stg"),
    node("test.p.not_null_orders_id", "model.p.orders"),
)
OK_HISTORY = {
    "model.p.stg": [ran(at="2024-03-09T11:00:00Z")],
    "model.p.orders": [ran(at="2024-03-09T12:00:00Z")],
    "test.p.not_null_orders_id": [ran("pass", 1.0, at="2024-03-09T12:05:00Z")],
}


def test_an_unchanged_node_whose_last_run_succeeded_and_nothing_upstream_is_newer_is_skipped_with_evidence() -> None:
    plan = make_plan(CHAIN, reference=CHAIN, history=OK_HISTORY)
    orders = item(plan, "model.p.orders")
    assert orders.action == "SKIP"
    assert orders.reasons[0].code == "unchanged"
    assert orders.reasons[0].policy_id == "skip_if_no_change"
    assert orders.reasons[0].evidence["last_completed_at"] == "2024-03-09T12:00:00Z"
    assert orders.reasons[0].failure is False
    assert {i.unique_id: i.action for i in plan.items} == {
        "model.p.stg": "SKIP",
        "model.p.orders": "SKIP",
        "test.p.not_null_orders_id": "SKIP",
    }


def test_a_modified_node_runs_and_so_does_everything_downstream_of_it() -> None:
    edited = graph(
        *(
            node(n.unique_id, *n.depends_on_nodes, body="new") if n.unique_id == "model.p.stg" else n
            for n in CHAIN.nodes.values()
        )
    )
    plan = make_plan(edited, reference=CHAIN, history=OK_HISTORY)
    assert codes(plan, "model.p.stg") == ["modified"]
    assert item(plan, "model.p.orders").action == "RUN"
    assert codes(plan, "model.p.orders") == ["upstream_modified"]
    assert item(plan, "model.p.orders").reasons[0].evidence == {"modified": "model.p.stg"}
    assert item(plan, "test.p.not_null_orders_id").action == "RUN"


def test_a_source_loaded_after_the_last_run_is_seen_through_a_view() -> None:
    fresh = {
        "source.p.raw.orders": SourceFreshness(
            unique_id="source.p.raw.orders", status="pass", max_loaded_at="2024-03-09T12:30:00Z"
        )
    }
    plan = make_plan(CHAIN, ["model.p.orders"], reference=CHAIN, history=OK_HISTORY, freshness=fresh)
    orders = item(plan, "model.p.orders")
    assert orders.action == "RUN"
    assert orders.reasons[0].code == "upstream_newer"
    assert orders.reasons[0].evidence["unique_id"] == "source.p.raw.orders"


def test_an_upstream_that_ran_after_the_node_makes_it_run() -> None:
    history = {**OK_HISTORY, "model.p.stg": [ran(at="2024-03-09T13:00:00Z")]}
    plan = make_plan(CHAIN, ["model.p.orders"], reference=CHAIN, history=history)
    assert codes(plan, "model.p.orders") == ["upstream_newer"]


def test_a_node_whose_last_run_failed_or_never_ran_is_not_skipped() -> None:
    history = {
        **OK_HISTORY,
        "model.p.orders": [ran(at="2024-03-09T10:00:00Z"), ran("error", at="2024-03-09T12:00:00Z")],
    }
    plan = make_plan(CHAIN, reference=CHAIN, history=history)
    assert codes(plan, "model.p.orders") == ["last_run_unsuccessful"]
    assert codes(plan, "test.p.not_null_orders_id") == ["upstream_runs"]
    plan = make_plan(CHAIN, reference=CHAIN, history={})
    assert {tuple(codes(plan, i.unique_id)) for i in plan.items} == {("never_ran",)}


def test_without_a_reference_graph_or_on_a_full_refresh_nothing_is_skipped() -> None:
    for reference, settings in ((None, PlanningSettings()), (CHAIN, PlanningSettings(full_refresh=True))):
        plan = make_plan(CHAIN, reference=reference, history=OK_HISTORY, settings=settings)
        assert {i.action for i in plan.items} == {"RUN"}
        assert codes(plan, "model.p.orders") == ["selected"]


# -- prioritize_exposures ----------------------------------------------------------------------------------------

EXPOSED = graph(
    node("model.p.a"),
    node("model.p.b", "model.p.a"),
    node("model.p.c"),
    node("model.p.d", "model.p.c"),
    node("test.p.unique_b", "model.p.b"),
    node("test.p.unique_d", "model.p.d"),
    node("exposure.p.dashboard", "model.p.b"),
)


def test_what_exposures_need_runs_in_wave_zero_in_topological_order_and_the_rest_later() -> None:
    plan = make_plan(EXPOSED)
    assert [(i.unique_id, i.wave, i.order) for i in plan.items] == [
        ("model.p.a", 0, 0),
        ("model.p.b", 0, 1),
        ("test.p.unique_b", 0, 2),
        ("model.p.c", 1, 3),
        ("model.p.d", 1, 4),
        ("test.p.unique_d", 1, 5),
    ]
    assert item(plan, "model.p.a").reasons[0].evidence == {"exposures": ["exposure.p.dashboard"], "exposure_count": 1}
    assert codes(plan, "model.p.c") == ["no_exposure"]
    assert plan.totals.not_executable == 1  # the exposure itself


def test_without_exposures_every_item_is_in_wave_zero() -> None:
    plan = make_plan(CHAIN)
    assert {i.wave for i in plan.items} == {0}
    assert [i.unique_id for i in plan.items] == ["model.p.stg", "model.p.orders", "test.p.not_null_orders_id"]


# -- limit_cost_budget -------------------------------------------------------------------------------------------

BUDGET_HISTORY = {
    "model.p.a": [ran(seconds=100)],
    "model.p.b": [ran(seconds=50)],
    "model.p.c": [ran(seconds=300)],
    "model.p.d": [ran(seconds=40)],
    "test.p.unique_b": [ran("pass", seconds=1)],
    "test.p.unique_d": [ran("pass", seconds=1)],
}


def test_over_budget_the_lowest_priority_work_is_dropped_leaves_first_until_the_plan_fits() -> None:
    settings = PlanningSettings(budget_seconds=200.0)
    plan = make_plan(EXPOSED, history=BUDGET_HISTORY, settings=settings)
    actions = {i.unique_id: i.action for i in plan.items}
    # c (300 s) is the most expensive, but d and its test read it: they go first, then c. a and b are needed
    # by the exposure and fit the budget once c, d and its test are gone.
    assert actions == {
        "model.p.a": "RUN",
        "model.p.b": "RUN",
        "test.p.unique_b": "RUN",
        "model.p.c": "SKIP",
        "model.p.d": "SKIP",
        "test.p.unique_d": "SKIP",
    }
    dropped = item(plan, "model.p.c").reasons[0]
    assert dropped.code == "budget_exceeded"
    assert dropped.failure is False
    assert dropped.evidence["dropped_rank"] == 3
    assert plan.totals.estimated_seconds == 151.0


def test_the_budget_never_drops_a_node_whose_selected_descendants_still_run() -> None:
    settings = PlanningSettings(budget_seconds=1.0)  # nothing fits: everything goes, leaves first
    plan = make_plan(EXPOSED, history=BUDGET_HISTORY, settings=settings)
    assert {i.action for i in plan.items} == {"SKIP"}
    ranks = {i.unique_id: i.reasons[0].evidence["dropped_rank"] for i in plan.items}
    assert ranks["test.p.unique_b"] < ranks["model.p.b"] < ranks["model.p.a"]
    assert ranks["test.p.unique_d"] < ranks["model.p.d"] < ranks["model.p.c"]
    assert max(ranks["model.p.c"], ranks["model.p.d"]) < ranks["model.p.a"]  # exposure work dropped last


def test_over_budget_with_the_approve_action_the_plan_requires_approval_and_keeps_every_item() -> None:
    settings = PlanningSettings(budget_seconds=200.0, budget_action="approve", approval_role="finops")
    plan = make_plan(EXPOSED, history=BUDGET_HISTORY, settings=settings)
    assert {i.action for i in plan.items} == {"RUN"}
    assert [(a.role, a.rule_id, a.unique_id) for a in plan.approvals] == [("finops", "budget_exceeded", None)]
    assert plan.approvals[0].reason.evidence["estimated_seconds"] == 492.0


def test_skipped_work_does_not_count_against_the_budget() -> None:
    history = {uid: [ran(seconds=1000)] for uid in CHAIN.nodes}
    plan = make_plan(CHAIN, reference=CHAIN, history=history, settings=PlanningSettings(budget_seconds=10))
    assert {i.action for i in plan.items} == {"SKIP"}
    assert all(i.reasons[0].code == "unchanged" for i in plan.items)


# -- partial_by_partition ----------------------------------------------------------------------------------------

MICRO = {"materialized": "incremental", "incremental_strategy": "microbatch", "event_time": "ts", "batch_size": "day"}
PARTITIONED = graph(
    node("model.p.events", materialized="incremental", config=MICRO),
    node("model.p.declared", meta={"lockgate": {"partition": {"event_time": "at", "batch_size": "month"}}}),
    node("model.p.plain_incremental", materialized="incremental", config={"incremental_strategy": "merge"}),
)


def test_a_microbatch_model_runs_partially_from_its_last_success_rounded_to_whole_batches_with_lookback() -> None:
    history = {"model.p.events": [ran(at="2024-03-07T05:00:00Z"), ran("error", at="2024-03-09T05:00:00Z")]}
    plan = make_plan(PARTITIONED, history=history)
    events = item(plan, "model.p.events")
    assert events.action == "PARTIAL"
    assert events.window == PartitionWindow(
        start=datetime(2024, 3, 6, tzinfo=UTC),  # floor(03-07) minus dbt's default lookback of 1 day
        end=datetime(2024, 3, 11, tzinfo=UTC),  # as_of 03-10 15:30 rounded up
        event_time="ts",
        batch_size="day",
        batches=5,
        lookback=1,
    )
    assert events.reasons[0].evidence["start_from"] == "last successful run"


def test_a_declared_meta_partition_contract_and_a_configured_window_give_a_partial_run_in_months() -> None:
    settings = PlanningSettings(partition_start=datetime(2023, 11, 15, tzinfo=UTC))
    plan = make_plan(PARTITIONED, settings=settings)
    declared = item(plan, "model.p.declared")
    assert declared.action == "PARTIAL"
    assert declared.window is not None
    assert (declared.window.start, declared.window.end, declared.window.batches) == (
        datetime(2023, 11, 1, tzinfo=UTC),
        datetime(2024, 4, 1, tzinfo=UTC),
        5,
    )
    assert declared.reasons[0].evidence["contract"] == "meta.lockgate.partition"


def test_models_without_an_explicit_partition_contract_never_run_partially() -> None:
    plan = make_plan(PARTITIONED, settings=PlanningSettings(partition_start=datetime(2024, 1, 1, tzinfo=UTC)))
    assert item(plan, "model.p.plain_incremental").action == "RUN"
    assert item(plan, "model.p.plain_incremental").window is None


def test_a_partitioned_model_without_a_start_or_on_a_full_refresh_is_built_in_full() -> None:
    plan = make_plan(PARTITIONED)
    assert item(plan, "model.p.events").action == "RUN"
    assert codes(plan, "model.p.events") == ["partition_no_start"]
    history = {"model.p.events": [ran()]}
    plan = make_plan(PARTITIONED, history=history, settings=PlanningSettings(full_refresh=True))
    assert item(plan, "model.p.events").action == "RUN"
    assert codes(plan, "model.p.events") == ["selected"]


# -- approval_rules ----------------------------------------------------------------------------------------------

ENFORCED = Contract(enforced=True, checksum="c1")
COLS = (Column(name="id", data_type="int"), Column(name="amount", data_type="numeric"))


def test_a_production_environment_requires_approval_and_never_changes_an_items_action() -> None:
    plan = make_plan(CHAIN, settings=PlanningSettings(production=True))
    assert [(a.role, a.rule_id, a.unique_id) for a in plan.approvals] == [("approver", "production", None)]
    assert plan.requires_approval
    assert {i.action for i in plan.items} == {"RUN"}


def test_an_estimated_cost_above_the_threshold_requires_approval() -> None:
    settings = PlanningSettings(rate_per_second=0.01, currency="USD", approval_cost_threshold=0.5)
    plan = make_plan(EXPOSED, history=BUDGET_HISTORY, settings=settings)
    assert [a.rule_id for a in plan.approvals] == ["cost_threshold"]
    assert plan.approvals[0].reason.evidence == {"estimated_cost": 4.92, "threshold": 0.5, "currency": "USD"}
    cheap = make_plan(
        EXPOSED, history=BUDGET_HISTORY, settings=PlanningSettings(rate_per_second=0.0001, approval_cost_threshold=0.5)
    )
    assert cheap.approvals == ()


def test_a_full_refresh_of_an_incremental_model_requires_approval() -> None:
    plan = make_plan(PARTITIONED, settings=PlanningSettings(full_refresh=True))
    assert [a.rule_id for a in plan.approvals] == ["full_refresh"]
    assert plan.approvals[0].reason.evidence["rebuilt"] == ["model.p.events", "model.p.plain_incremental"]
    assert make_plan(CHAIN, settings=PlanningSettings(full_refresh=True)).approvals == ()


@pytest.mark.parametrize(
    ("new_contract", "new_columns", "expected"),
    [
        (ENFORCED, COLS[:1], {"removed_columns": ["amount"]}),
        (
            ENFORCED,
            (COLS[0], Column(name="amount", data_type="text")),
            {"type_changes": {"amount": ["numeric", "text"]}},
        ),
        (Contract(enforced=False), COLS, {"enforcement_removed": True}),
        (ENFORCED, (*COLS, Column(name="extra", data_type="int")), None),  # adding a column is not breaking
    ],
    ids=["column_removed", "type_changed", "enforcement_removed", "column_added"],
)
def test_a_breaking_change_to_an_enforced_contract_requires_approval_naming_the_model(
    new_contract: Contract, new_columns: tuple[Column, ...], expected: dict[str, Any] | None
) -> None:
    before = graph(node("model.p.m", contract=ENFORCED, columns=COLS))
    after = graph(node("model.p.m", contract=new_contract, columns=new_columns))
    plan = make_plan(after, reference=before)
    found = [(a.rule_id, a.unique_id, a.reason.evidence) for a in plan.approvals]
    assert found == ([] if expected is None else [("breaking_contract", "model.p.m", expected)])


# -- precedence, consistency, registry ---------------------------------------------------------------------------


class Fixed:
    """A plugin policy that returns the decisions it was given."""

    def __init__(self, pid: str, decide: Sequence[tuple[str | None, str, dict[str, Any]]]) -> None:
        self.id, self.version, self._decide = pid, 1, decide

    def evaluate(self, context: PolicyContext) -> list[Decision]:
        out = []
        for uid, action, extra in self._decide:
            failure = bool(extra.get("failure"))
            why = reason(self, extra.get("code", action.lower()), f"{self.id} says {action}", failure=failure)
            out.append(
                Decision(
                    unique_id=uid,
                    action=cast("Action", action),
                    reason=why,
                    window=extra.get("window"),
                    wave=extra.get("wave"),
                )
            )
        return out


WINDOW = PartitionWindow(start=AS_OF, end=AS_OF, event_time="ts", batch_size="day", batches=1)


def test_a_skip_for_a_failure_reason_beats_partial_and_run_and_keeps_all_skip_reasons_failure_first() -> None:
    g = graph(node("model.p.a"))
    policies = [
        Fixed("first", [("model.p.a", "PARTIAL", {"window": WINDOW}), ("model.p.a", "SKIP", {"code": "plain"})]),
        Fixed("second", [("model.p.a", "SKIP", {"failure": True, "code": "quarantined"}), ("model.p.a", "RUN", {})]),
    ]
    plan = make_plan(g, policies=policies)
    a = item(plan, "model.p.a")
    assert a.action == "SKIP"
    assert [(r.policy_id, r.code, r.failure) for r in a.reasons] == [
        ("second", "quarantined", True),
        ("first", "plain", False),
    ]
    assert a.window is None


def test_any_skip_beats_partial_and_partial_beats_run() -> None:
    g = graph(node("model.p.a"), node("model.p.b"))
    policies = [
        Fixed("p1", [("model.p.a", "RUN", {}), ("model.p.b", "RUN", {})]),
        Fixed("p2", [("model.p.a", "PARTIAL", {"window": WINDOW}), ("model.p.b", "PARTIAL", {"window": WINDOW})]),
        Fixed("p3", [("model.p.b", "SKIP", {})]),
    ]
    plan = make_plan(g, policies=policies)
    assert (item(plan, "model.p.a").action, item(plan, "model.p.a").window) == ("PARTIAL", WINDOW)
    assert [r.policy_id for r in item(plan, "model.p.a").reasons] == ["p2"]
    assert item(plan, "model.p.b").action == "SKIP"


def test_reasons_of_equal_strength_are_ordered_by_policy_order_then_policy_id() -> None:
    decisions = [
        (1, Decision(unique_id="x", action="RUN", reason=reason(Fixed(pid, []), "c", "m"))) for pid in ("zeta", "alpha")
    ]
    decisions.append((0, Decision(unique_id="x", action="RUN", reason=reason(Fixed("omega", []), "c", "m"))))
    action, reasons, window, wave = combine(decisions)
    assert (action, window, wave) == ("RUN", None, None)
    assert [r.policy_id for r in reasons] == ["omega", "alpha", "zeta"]


def test_a_node_downstream_of_a_failure_skip_is_skipped_for_a_failure_too_even_through_unselected_nodes() -> None:
    g = graph(node("model.p.a"), node("model.p.b", "model.p.a"), node("model.p.c", "model.p.b"), node("model.p.d"))
    plan = make_plan(
        g, ["model.p.a", "model.p.c", "model.p.d"], policies=[Fixed("q", [("model.p.a", "SKIP", {"failure": True})])]
    )
    c = item(plan, "model.p.c")
    assert c.action == "SKIP"
    assert [(r.policy_id, r.code, r.failure) for r in c.reasons] == [("lockgate.consistency", "upstream_skipped", True)]
    assert c.reasons[0].evidence == {"upstream": ["model.p.a"], "failed": ["model.p.a"]}
    assert item(plan, "model.p.d").action == "RUN"


def test_a_plain_skip_upstream_does_not_stop_downstream_work() -> None:
    g = graph(node("model.p.a"), node("model.p.b", "model.p.a"))
    plan = make_plan(g, policies=[Fixed("q", [("model.p.a", "SKIP", {})])])
    assert item(plan, "model.p.b").action == "RUN"


def test_a_wave_hint_is_raised_to_the_wave_of_a_later_parent() -> None:
    g = graph(node("model.p.a"), node("model.p.b", "model.p.a"))
    plan = make_plan(g, policies=[Fixed("w", [("model.p.a", "RUN", {"wave": 3}), ("model.p.b", "RUN", {"wave": 0})])])
    assert [(i.unique_id, i.wave) for i in plan.items] == [("model.p.a", 3), ("model.p.b", 3)]


def test_a_plugin_registered_by_id_runs_where_the_environment_orders_it() -> None:
    plugin = register_policy(Fixed("quarantine", [("model.p.orders", "SKIP", {"failure": True})]))
    try:
        assert "quarantine" in registered_policies()
        settings = PlanningSettings(policy_order=("quarantine", "prioritize_exposures"))
        plan = make_plan(CHAIN, settings=settings)
        assert [(p.policy_id, p.version) for p in plan.inputs.policy_set] == [
            ("quarantine", 1),
            ("prioritize_exposures", 1),
        ]
        assert item(plan, "test.p.not_null_orders_id").reasons[0].code == "upstream_skipped"
        with pytest.raises(PlanningError, match="already registered"):
            register_policy(Fixed("quarantine", []))
        assert register_policy(plugin) is plugin  # the same object again is fine
    finally:
        unregister_policy("quarantine")
    with pytest.raises(PlanningError, match="unknown policy 'quarantine'"):
        make_plan(CHAIN, settings=PlanningSettings(policy_order=("quarantine",)))


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (("model.p.a", "PARTIAL", {}), "needs a partition window"),
        (("model.p.a", "RUN", {"window": WINDOW}), "cannot carry a partition window"),
        (("model.p.zzz", "SKIP", {}), "not in the plan"),
        ((None, "RUN", {}), "not in the plan"),
    ],
)
def test_a_malformed_decision_is_refused(decision: tuple[str | None, str, dict[str, Any]], message: str) -> None:
    with pytest.raises(PlanningError, match=message):
        make_plan(graph(node("model.p.a")), policies=[Fixed("bad", [decision])])


def test_a_decision_whose_reason_names_another_policy_is_refused() -> None:
    class Liar(Fixed):
        def evaluate(self, context: PolicyContext) -> list[Decision]:
            return [Decision(unique_id="model.p.a", action="RUN", reason=reason(Fixed("someone_else", []), "c", "m"))]

    with pytest.raises(PlanningError, match="returned a reason of 'someone_else'"):
        make_plan(graph(node("model.p.a")), policies=[Liar("liar", [])])
