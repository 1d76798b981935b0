"""Properties of build_plan on random graphs (hypothesis): determinism down to the bytes and across
PYTHONHASHSEED values, no RUN below a failure SKIP, and locality (an unrelated node changes no other decision)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.graph import LogicalGraph, NodeResult, SourceFreshness
from contracts.plan import Decision, ExecutionPlan, PlanningSettings, canonical_plan_bytes, compute_plan_hash
from services.planning.policies import DEFAULT_POLICY_ORDER, PolicyContext
from tests.corpus import REPO_ROOT
from tests.unit.planning.test_policies import Fixed, graph, make_plan, node

Case = dict[str, Any]
KINDS = ("model", "model", "model", "test", "seed", "source", "exposure")
MATERIALIZED = ("table", "view", "incremental", "ephemeral")
STATUSES = ("success", "success", "pass", "error", "skipped")
MICRO = {"materialized": "incremental", "incremental_strategy": "microbatch", "event_time": "ts", "batch_size": "hour"}


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random project (parents always earlier nodes), its reference, history, freshness and settings."""
    size = draw(st.integers(1, 12))
    specs = []
    for i in range(size):
        kind = draw(st.sampled_from(KINDS)) if i else "model"
        parents = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        specs.append(
            {
                "kind": kind,
                "parents": parents,
                "materialized": draw(st.sampled_from(MATERIALIZED)),
                "micro": draw(st.booleans()) and kind == "model",
                "edited": draw(st.booleans()),
                "runs": draw(
                    st.lists(st.tuples(st.sampled_from(STATUSES), st.integers(1, 500), st.integers(0, 47)), max_size=3)
                ),
                "selected": draw(st.booleans()),
                "loaded_hour": draw(st.none() | st.integers(0, 47)),
            }
        )
    return {
        "specs": specs,
        "with_reference": draw(st.booleans()),
        "settings": PlanningSettings(
            production=draw(st.booleans()),
            adapter_type=draw(st.sampled_from(["duckdb", "snowflake"])),
            threads=draw(st.integers(1, 8)),
            warehouse_size="Small",
            rate_per_second=draw(st.none() | st.just(0.01)),
            budget_seconds=draw(st.none() | st.floats(1, 2000)),
            budget_action=draw(st.sampled_from(["drop", "approve"])),
            full_refresh=draw(st.booleans()),
        ),
        "failing": draw(st.sets(st.integers(0, size - 1), max_size=2)),
    }


def uid(specs: list[Case], i: int) -> str:
    kind = specs[i]["kind"]
    return f"{kind}.p.n{i}" if kind != "source" else f"source.p.raw.n{i}"


def build(case: Case, *, extra_node: bool = False, quarantine: bool = False) -> ExecutionPlan:
    specs = case["specs"]
    new, old, history, freshness = [], [], {}, {}
    for i, spec in enumerate(specs):
        me = uid(specs, i)
        parents = [uid(specs, p) for p in spec["parents"] if specs[p]["kind"] not in ("test", "exposure")]
        config = MICRO if spec["micro"] else None
        made = node(me, *parents, materialized=spec["materialized"], config=config)
        new.append(made)
        old.append(
            node(me, *parents, materialized=spec["materialized"], config=config, body="old") if spec["edited"] else made
        )
        history[me] = [
            NodeResult(
                unique_id=me, status=s, execution_time=t, completed_at=f"2024-03-0{1 + h // 24}T{h % 24:02d}:00:00Z"
            )
            for s, t, h in spec["runs"]
        ]
        if spec["loaded_hour"] is not None and spec["kind"] == "source":
            h = spec["loaded_hour"]
            freshness[me] = SourceFreshness(
                unique_id=me, status="pass", max_loaded_at=f"2024-03-0{1 + h // 24}T{h % 24:02d}:00:00Z"
            )
    if extra_node:
        new.append(node("model.p.unrelated"))
    selected = [uid(specs, i) for i, s in enumerate(specs) if s["selected"]] + (
        ["model.p.unrelated"] if extra_node else []
    )
    policies = None
    if quarantine:
        ids = [uid(specs, i) for i in sorted(case["failing"])]
        base = [
            __import__("services.planning.policies", fromlist=["get_policy"]).get_policy(p)
            for p in DEFAULT_POLICY_ORDER
        ]
        policies = [_Quarantine(ids), *base]
    reference: LogicalGraph | None = graph(*old) if case["with_reference"] else None
    return make_plan(
        graph(*new),
        selected,
        reference=reference,
        history=history,
        freshness=freshness,
        settings=case["settings"],
        policies=policies,
    )


class _Quarantine(Fixed):
    """Failure-SKIPs the given nodes when they are in the plan."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__("quarantine", [])
        self._ids = ids

    def evaluate(self, context: PolicyContext) -> list[Decision]:
        self._decide = [(u, "SKIP", {"failure": True}) for u in self._ids if u in context.index.item_set]
        return super().evaluate(context)


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cases())
def test_the_same_inputs_give_a_byte_identical_plan_and_hash(case: Case) -> None:
    first, second = build(case), build(case)
    assert canonical_plan_bytes(first) == canonical_plan_bytes(second)
    assert msgspec.json.encode(first) == msgspec.json.encode(second)
    assert first.plan_hash == second.plan_hash == compute_plan_hash(first)


@FAST
@given(cases())
def test_a_plan_never_runs_a_node_whose_required_upstream_is_skipped_for_a_failure(case: Case) -> None:
    plan = build(case, quarantine=True)
    failed = {i.unique_id for i in plan.items if i.action == "SKIP" and any(r.failure for r in i.reasons)}
    in_plan = {i.unique_id for i in plan.items}
    nodes = {n.unique_id: n for n in _graph_of(case)}
    for plan_item in plan.items:
        if plan_item.action == "SKIP":
            continue
        # walk up the whole graph: no failure-skipped item anywhere upstream
        stack, seen = list(nodes[plan_item.unique_id].depends_on_nodes), set()
        while stack:
            up = stack.pop()
            if up in seen or up not in nodes:
                continue
            seen.add(up)
            assert not (up in in_plan and up in failed), (plan_item.unique_id, up)
            stack.extend(nodes[up].depends_on_nodes)


def _graph_of(case: Case) -> list[Any]:
    specs = case["specs"]
    result = []
    for i, spec in enumerate(specs):
        parents = [uid(specs, p) for p in spec["parents"] if specs[p]["kind"] not in ("test", "exposure")]
        result.append(node(uid(specs, i), *parents))
    return result


@FAST
@given(cases())
def test_adding_an_unrelated_node_changes_no_other_items_decision(case: Case) -> None:
    case = {**case, "settings": msgspec.structs.replace(case["settings"], budget_seconds=None)}  # the budget is global
    before = {i.unique_id: (i.action, i.reasons, i.wave, i.window, i.estimate) for i in build(case).items}
    after = {
        i.unique_id: (i.action, i.reasons, i.wave, i.window, i.estimate) for i in build(case, extra_node=True).items
    }
    assert after.pop("model.p.unrelated")[0] == "RUN"
    assert after == before


FIXED_CASE_SCRIPT = """
import sys
from tests.unit.planning.test_plan_properties import fixed_plan
sys.stdout.write(fixed_plan().plan_hash)
"""


def fixed_plan() -> ExecutionPlan:
    """A plan that exercises every built-in: skips, exposures, a partition window, budget drops, approvals."""
    case: Case = {
        "specs": [
            {
                "kind": "model",
                "parents": [],
                "materialized": "table",
                "micro": False,
                "edited": False,
                "runs": [("success", 30, 5)],
                "selected": True,
                "loaded_hour": None,
            },
            {
                "kind": "model",
                "parents": [0],
                "materialized": "view",
                "micro": False,
                "edited": True,
                "runs": [("success", 3, 6)],
                "selected": True,
                "loaded_hour": None,
            },
            {
                "kind": "model",
                "parents": [1],
                "materialized": "incremental",
                "micro": True,
                "edited": False,
                "runs": [("success", 90, 7), ("error", 1, 8)],
                "selected": True,
                "loaded_hour": None,
            },
            {
                "kind": "test",
                "parents": [2],
                "materialized": "table",
                "micro": False,
                "edited": False,
                "runs": [("pass", 1, 9)],
                "selected": True,
                "loaded_hour": None,
            },
            {
                "kind": "exposure",
                "parents": [2],
                "materialized": "table",
                "micro": False,
                "edited": False,
                "runs": [],
                "selected": True,
                "loaded_hour": None,
            },
            {
                "kind": "model",
                "parents": [0],
                "materialized": "table",
                "micro": False,
                "edited": False,
                "runs": [("success", 400, 5)],
                "selected": True,
                "loaded_hour": None,
            },
            {
                "kind": "source",
                "parents": [],
                "materialized": "table",
                "micro": False,
                "edited": False,
                "runs": [],
                "selected": False,
                "loaded_hour": 30,
            },
            {
                "kind": "model",
                "parents": [6],
                "materialized": "table",
                "micro": False,
                "edited": False,
                "runs": [("success", 12, 10)],
                "selected": True,
                "loaded_hour": None,
            },
        ],
        "with_reference": True,
        "settings": PlanningSettings(
            production=True,
            adapter_type="snowflake",
            warehouse_size="Large",
            credit_price=2.5,
            currency="USD",
            threads=3,
            budget_seconds=300.0,
        ),
        "failing": set(),
    }
    return build(case)


def test_the_hash_is_the_same_in_other_processes_whatever_their_hash_seed() -> None:
    here = fixed_plan()
    assert {i.action for i in here.items} == {"RUN", "PARTIAL", "SKIP"}
    assert here.approvals
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", FIXED_CASE_SCRIPT],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert out.stdout == here.plan_hash, seed
