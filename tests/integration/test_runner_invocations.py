"""The runner's dbt invocations against real dbt (dbt-core 1.11, dbt-duckdb).

1. Exact selection: on the demo project (with the selection suite's extras: versioned models, a YAML
   snapshot, a private model...) and on a generated project, seeded random subsets of the executable nodes
   become plans; every invocation's selection flags, given to ``dbt ls``, list exactly its nodes.
2. A real build: a copy of the demo project with a failing singular test and a warn-severity test, run as a
   plan of four invocations (wave 0: a seed, a model and its tests, the warn test among them; wave 1: the
   runs upstream of the microbatch model; the microbatch model as a PARTIAL item over two months; what
   depends on it). The JSON log gives one start and one finish per node, in order, with dbt's statuses;
   fidelity finds no deviation; the run ends ``failed``/``node_failed``, and its first wave alone (whose only
   problem is the warn test) ``warning``.

dbt parses the three projects in one subprocess, then answers every ``dbt ls`` of a project from one parse
(the selection suite's batched runner); each build invocation is its own ``dbt`` process, as in the runner.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from graphlib import TopologicalSorter
from pathlib import Path

import pytest

from contracts.graph import LogicalGraph
from contracts.plan import ExecutionPlan, ItemAction, PartitionWindow, PlanInputs, PlanItem, PlanTotals
from services.demo.build import DEMO_PROJECT, PROFILE_NAME, write_profile
from services.ingestion.artifacts import read_manifest
from services.planning.planner import executable
from services.planning.selection.engine import Selector
from services.runner.dbtlog import NodeFinishedObs, NodeLifecycle, NodeStartedObs, parse_line
from services.runner.fidelity import compare, executed_from_run_results, outcome
from services.runner.invocations import Invocation, plan_invocations
from tests.generated_project import generate_project
from tests.integration.test_selection_conformance import _LS_RUNNER, _NOT_COPIED, EXTRA_FILES, _dbt_env, _write

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
DBT_TIMEOUT_S = 300
FAILING_TEST = """select plan_id from {{ ref('stg_shop__plans') }}\n"""
WARN_TEST = """{{ config(severity='warn') }}\nselect customer_id from {{ ref('stg_shop__customers') }}\n"""
MICROBATCH = "model.lockgate_demo.fct_daily_revenue"
SPRING = PartitionWindow(
    start=datetime(2026, 3, 1, tzinfo=UTC),
    end=datetime(2026, 5, 1, tzinfo=UTC),
    event_time="revenue_date",
    batch_size="month",
    batches=2,
)

_PARSE = r"""
import json, sys
from dbt.cli.main import dbtRunner
for project in json.loads(open(sys.argv[1]).read()):
    done = dbtRunner().invoke(["parse", "--project-dir", project["project"], "--profiles-dir", project["profiles"],
                               "--profile", project["profile"], "--quiet"])
    if not done.success:
        raise SystemExit(f"dbt parse of {project['project']} failed: {done.exception}")
"""


@dataclass
class Project:
    root: Path
    profiles: Path
    graph: LogicalGraph


def _run_python(script: str, *args: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=_dbt_env(),
        capture_output=True,
        text=True,
        timeout=DBT_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """The demo project with extras, a generated project and the demo project with a failing and a warn
    test, each parsed (manifest in its ``target/``) with a DuckDB profile of its own."""
    root = tmp_path_factory.mktemp("invocations")
    demo, generated, build = root / "demo", root / "generated", root / "build"
    shutil.copytree(DEMO_PROJECT, demo, ignore=_NOT_COPIED)
    _write(demo, EXTRA_FILES)
    generate_project(generated, models=120, seed=11)
    shutil.copytree(DEMO_PROJECT, build, ignore=_NOT_COPIED)
    _write(build, {"tests/assert_no_plans_lg_fail.sql": FAILING_TEST, "tests/assert_warns_lg.sql": WARN_TEST})
    profiles = {
        name: write_profile(root / f"profiles-{name}", duckdb_path=root / f"{name}.duckdb").parent
        for name in ("demo", "generated", "build")
    }
    request = [
        {"project": str(path), "profiles": str(profiles[name]), "profile": PROFILE_NAME}
        for name, path in (("demo", demo), ("generated", generated), ("build", build))
    ]
    (root / "parse.json").write_text(json.dumps(request))
    _run_python(_PARSE, str(root / "parse.json"), cwd=root)
    return {
        name: Project(
            root=path,
            profiles=profiles[name],
            graph=read_manifest((path / "target" / "manifest.json").read_bytes()).graph,
        )
        for name, path in (("demo", demo), ("generated", generated), ("build", build))
    }


def topological(graph: LogicalGraph) -> list[str]:
    sorter = TopologicalSorter(
        {uid: [p for p in n.depends_on_nodes if p in graph.nodes] for uid, n in graph.nodes.items()}
    )
    return [uid for uid in sorter.static_order() if executable(graph, uid)]


def make_plan(graph: LogicalGraph, chosen: dict[str, tuple[ItemAction, int, PartitionWindow | None]]) -> ExecutionPlan:
    """A plan of ``chosen`` (unique_id -> action, wave, window) in topological order within waves."""
    position = {uid: n for n, uid in enumerate(topological(graph))}
    ordered = sorted(chosen, key=lambda uid: (chosen[uid][1], position[uid]))
    items = tuple(
        PlanItem(
            node_uuid=uuid.uuid5(uuid.NAMESPACE_URL, uid),
            unique_id=uid,
            resource_type=graph.nodes[uid].resource_type,
            action=chosen[uid][0],
            wave=chosen[uid][1],
            order=n,
            window=chosen[uid][2],
        )
        for n, uid in enumerate(ordered)
    )
    inputs = PlanInputs(project_id="p", environment_id="dev", graph_version=1, as_of=AS_OF)
    return ExecutionPlan(inputs=inputs, items=items, totals=PlanTotals())


def invocations_of(project: Project, plan: ExecutionPlan, out: Path) -> list[Invocation]:
    return plan_invocations(
        plan,
        project.graph,
        threads=2,
        target="dev",
        profile=PROFILE_NAME,
        project_dir=project.root,
        profiles_dir=project.profiles,
        target_path=out / "target",
        log_path=out / "logs",
        partial_parse_file=project.root / "target" / "partial_parse.msgpack",
    )


def random_plans(graph: LogicalGraph, seeds: range) -> list[ExecutionPlan]:
    """Seeded random subsets (one node, a few, a tenth, half, everything), in one wave or several."""
    nodes = topological(graph)
    every = list(TopologicalSorter({uid: n.depends_on_nodes for uid, n in graph.nodes.items()}).static_order())
    plans = []
    for seed in seeds:
        rng = random.Random(seed)
        size = rng.choice([1, 3, max(1, len(nodes) // 10), len(nodes) // 2, len(nodes)])
        subset = set(rng.sample(nodes, size))
        waves: dict[str, int] = {}
        for uid in every:  # through ephemeral models and sources too: a wave never precedes an ancestor's
            if uid not in graph.nodes:
                continue
            parents = [waves[p] for p in graph.nodes[uid].depends_on_nodes if p in waves]
            waves[uid] = max(parents, default=0) + (rng.random() < 0.2 if seed % 2 else 0)
        plans.append(make_plan(graph, {uid: ("RUN", waves[uid], None) for uid in subset}))
    return plans


def ls_selection(invocation: Invocation) -> list[str]:
    """The invocation's selection flags (what comes between ``build`` and ``--target-path``)."""
    argv = list(invocation.argv)
    return argv[1 : argv.index("--target-path")]


@pytest.mark.parametrize("name", ["demo", "generated"])
def test_every_invocation_selects_exactly_its_nodes_in_dbt_ls(
    projects: dict[str, Project], name: str, tmp_path: Path
) -> None:
    project = projects[name]
    types = {project.graph.nodes[uid].resource_type for uid in topological(project.graph)}
    assert {"model", "seed", "test"} <= types
    if name == "demo":
        assert {"snapshot", "unit_test"} <= types
        assert any(n.version for n in project.graph.nodes.values())
    engine = Selector(project.graph)
    queries: list[tuple[str, list[str]]] = []
    expected: dict[str, list[str]] = {}
    for n, plan in enumerate(random_plans(project.graph, range(8))):
        invocations = plan_invocations(
            plan,
            project.graph,
            threads=1,
            target="dev",
            project_dir=project.root,
            profiles_dir=project.profiles,
            target_path=tmp_path / "target",
            log_path=tmp_path / "logs",
            selector=engine,
        )
        assert set().union(*(i.unique_ids for i in invocations)) == {i.unique_id for i in plan.items}
        for k, invocation in enumerate(invocations):
            key = f"plan {n} invocation {k}"
            queries.append((key, ls_selection(invocation)))
            expected[key] = sorted(invocation.unique_ids)
    request = {
        "project": str(project.root),
        "profiles": str(project.profiles),
        "profile": PROFILE_NAME,
        "queries": queries,
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    _run_python(_LS_RUNNER, str(tmp_path / "request.json"), str(tmp_path / "answers.json"), cwd=project.root)
    answers = json.loads((tmp_path / "answers.json").read_text())
    for key, uids in expected.items():
        assert answers[key] == {"ok": uids}, key
    # some invocations select a node or two, some a large part of the project
    sizes = [len(uids) for uids in expected.values()]
    assert min(sizes) <= 2
    assert max(sizes) >= len(topological(project.graph)) // 3


# ---------------------------------------------------------------------------------------------- a real build


def plan_of(statuses: dict[str, str]) -> ExecutionPlan:
    """A plan that RUNs exactly these nodes (what fidelity compares with)."""
    items = tuple(
        PlanItem(node_uuid=uuid.uuid4(), unique_id=uid, resource_type=uid.split(".")[0], action="RUN", order=n)
        for n, uid in enumerate(statuses)
    )
    inputs = PlanInputs(project_id="p", environment_id="dev", graph_version=1, as_of=AS_OF)
    return ExecutionPlan(inputs=inputs, items=items, totals=PlanTotals())


@dataclass
class Built:
    exit_code: int
    observations: list[NodeStartedObs | NodeFinishedObs]
    log_names: list[str]
    """Every record's event name, per invocation in order."""


def run(invocations: list[Invocation], cwd: Path) -> list[Built]:
    """Each invocation as the runner starts it: ``dbt <argv>``, standard error merged, every line parsed."""
    built = []
    for invocation in invocations:
        done = subprocess.run(
            [sys.executable, "-m", "dbt.cli.main", *invocation.argv],
            cwd=cwd,
            env=_dbt_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=DBT_TIMEOUT_S,
            check=False,
        )
        nodes = NodeLifecycle()
        records = [parse_line(line) for line in done.stdout.splitlines()]
        observations = [obs for record in records if (obs := nodes.feed(record)) is not None]
        assert nodes.open == ()
        built.append(Built(done.returncode, observations, [r.name for r in records]))
    return built


def test_a_plan_in_waves_with_a_partial_item_and_a_failing_test(projects: dict[str, Project], tmp_path: Path) -> None:
    project = projects["build"]
    graph = project.graph
    customers = "model.lockgate_demo.stg_shop__customers"
    first_wave = {"seed.lockgate_demo.raw_customers", customers} | {
        uid for uid, n in graph.nodes.items() if n.resource_type == "test" and n.depends_on_nodes == (customers,)
    }
    chosen: dict[str, tuple[ItemAction, int, PartitionWindow | None]] = {}
    for uid in topological(graph):
        wave = 0 if uid in first_wave else 1
        chosen[uid] = ("PARTIAL", wave, SPRING) if uid == MICROBATCH else ("RUN", wave, None)
    plan = make_plan(graph, chosen)
    invocations = invocations_of(project, plan, tmp_path)
    assert [(i.wave, i.window is not None) for i in invocations] == [(0, False), (1, False), (1, True), (1, False)]
    assert invocations[2].unique_ids == {MICROBATCH}
    assert invocations[0].unique_ids == first_wave

    built = run(invocations, project.root)
    assert [b.exit_code for b in built][:3] == [0, 1, 0]

    # the log: one start then one finish per node, every planned node of each invocation, nothing else
    for invocation, b in zip(invocations, built, strict=True):
        starts = [o.unique_id for o in b.observations if isinstance(o, NodeStartedObs)]
        finishes = [o.unique_id for o in b.observations if isinstance(o, NodeFinishedObs)]
        assert sorted(finishes) == sorted(invocation.unique_ids)
        assert sorted(starts) == sorted(finishes)
        sequence = [(type(o).__name__, o.unique_id) for o in b.observations]
        for uid in finishes:
            assert sequence.index(("NodeStartedObs", uid)) < sequence.index(("NodeFinishedObs", uid))
        assert "MainReportVersion" in b.log_names
    # the PARTIAL item ran only the window's two monthly batches
    assert built[2].log_names.count("LogStartBatch") == 2

    statuses: dict[str, str] = {}
    for b in built:
        statuses.update({o.unique_id: o.status for o in b.observations if isinstance(o, NodeFinishedObs)})
    assert statuses["test.lockgate_demo.assert_no_plans_lg_fail"] == "fail"
    assert statuses["test.lockgate_demo.assert_warns_lg"] == "warn"
    assert statuses["model.lockgate_demo.dim_plans"] == "skipped"  # downstream of the failing test's model
    assert statuses[MICROBATCH] == "success"

    executed = executed_from_run_results([i.run_results for i in invocations])
    assert executed == statuses
    deviation = compare(plan, executed)
    assert not deviation.unplanned
    assert not deviation.missing
    # the first wave alone: its only problem is the warn test
    first = executed_from_run_results([invocations[0].run_results])
    assert first["test.lockgate_demo.assert_warns_lg"] == "warn"
    status, reason, message = outcome(first, exit_code=built[0].exit_code, deviation=compare(plan_of(first), first))
    assert (status, reason) == ("warning", "")
    assert "test.lockgate_demo.assert_warns_lg" in message

    exit_code = next((b.exit_code for b in built if b.exit_code), 0)
    status, reason, message = outcome(executed, exit_code=exit_code, deviation=deviation)
    assert (status, reason) == ("failed", "node_failed")
    assert "test.lockgate_demo.assert_no_plans_lg_fail (fail)" in message
    assert "skipped" in message

    # a runner that stops after the failing invocation: the rest is missing, the reason stays the failure
    partial = executed_from_run_results([i.run_results for i in invocations[:2]])
    deviation = compare(plan, partial)
    assert set(deviation.missing) == invocations[2].unique_ids | invocations[3].unique_ids
    assert outcome(partial, exit_code=1, deviation=deviation)[1] == "node_failed"
