"""Lockgate's selection engine against real ``dbt ls`` on a generated project of 300 models.

The demo suite (``test_selection_conformance.py``) covers every method on a small hand-written project;
this one asks the same questions of a project shaped like real ones (``tests/generated_project.py``): a
few hundred models in layered folders, fan-in from one parent to ten, hub models, ephemeral and
incremental models, groups and access levels, versioned models, ~600 tests (some warn-severity, some with
two parents), exposures and YAML selectors. ``state:`` methods compare it with a second generated copy
with a few edits (a body, a materialization set in YAML, a description, a new model, a removed model),
parsed as the ``--state``.

dbt runs once, in one subprocess: it parses the reference copy into the state folder, parses the current
copy, then answers every expression with ``dbt ls --output json --output-keys unique_id`` (the demo suite's
runner, with the state parse in front).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.demo.build import PROFILE_NAME, write_profile
from services.ingestion.artifacts import read_manifest
from services.planning.selection.engine import Selector
from tests.generated_project import Generated, generate_project, plan_project
from tests.integration.test_selection_conformance import _LS_RUNNER, Case, S, _dbt_env, _diff

MODELS = 300
SEED = 7
PLAN = plan_project(MODELS, SEED)
"""The generated project's names, known at collection time (the generator is deterministic)."""

_hubs = {name[:3]: name for name in PLAN.hubs}
STG_HUB, INT_HUB, MART_HUB = _hubs["stg"], _hubs["int"], next(h for h in PLAN.hubs if h[:3] in ("fct", "dim"))
V2, V3 = PLAN.versioned
"""Versioned models: ``V2`` has versions 1 and 2, ``V3`` also a prerelease 3."""
PRIVATE = PLAN.private[0]
INTERMEDIATE = PLAN.names("intermediate")[10]

_PARSE_STATE = r"""
import json, sys
from dbt.cli.main import dbtRunner
_request = json.loads(open(sys.argv[1]).read())
_state = dbtRunner().invoke(["parse", "--project-dir", _request["state_project"], "--target-path",
                             _request["state_dir"], "--profiles-dir", _request["profiles"], "--profile",
                             _request["profile"], "--quiet"])
if not _state.success:
    raise SystemExit(f"dbt parse of the state project failed: {_state.exception}")
"""

STATELESS: list[Case] = [
    # names, fqn paths and wildcards, versions
    S(STG_HUB),
    S(MART_HUB),
    S("staging"),
    S("intermediate.finance"),
    S("gen_shop.marts.ops"),
    S("marts.*"),
    S("*orders*"),
    S("fct_*"),
    S("dim_*_sessions_*"),
    S("intermediate.*.int_*__orders_*"),
    S(V2),
    S(f"{V3}.v3"),
    S(f"{V2}_v1"),
    S("version:latest"),
    S("version:old"),
    S("version:prerelease"),
    S("version:none"),
    # graph operators
    S(f"+{MART_HUB}"),
    S(f"{INT_HUB}+"),
    S(f"2+{MART_HUB}"),
    S(f"{STG_HUB}+3"),
    S(f"1+{V2}+1"),
    S(f"@{INT_HUB}"),
    S(f"@{STG_HUB}", resource_type="all"),
    S("+source:crm"),
    S(f"+{PRIVATE}"),
    S("1+exposure:*"),
    S(f"tag:marts,@{INT_HUB}"),
    # unions, intersections, excludes
    S("tag:finance tag:marketing"),
    S("tag:marts,tag:finance"),
    S("tag:marts,config.materialized:incremental"),
    S(f"+{MART_HUB},tag:intermediate"),
    S("tag:pii,+exposure:board_pack"),
    S(f"{INTERMEDIATE}+ {STG_HUB}+1"),
    S("tag:marts", exclude="tag:finance"),
    S("+exposure:board_pack", exclude="source:* tag:staging"),
    S(f"@{INT_HUB}", exclude="resource_type:test"),
    Case(exclude="tag:intermediate"),
    S("group:finance", exclude="access:private"),
    S("test_name:not_null,config.severity:warn"),
    # tag, path, file, package, resource_type
    S("tag:staging"),
    S("tag:finance"),
    S("tag:pii"),
    S("tag:hourly tag:core"),
    S("tag:raw"),
    S("tag:reporting"),
    S("path:models/marts/finance"),
    S("path:models/intermediate"),
    S("path:models/marts/*/_models.yml"),
    S("path:models/marts/*/fct_*"),
    S("path:tests"),
    S("path:seeds"),
    S(f"file:{MART_HUB}.sql"),
    S("file:_models.yml"),
    S("file:*.csv"),
    S("package:gen_shop"),
    S("package:this"),
    S("resource_type:seed"),
    S("resource_type:test"),
    S("resource_type:exposure"),
    S("resource_type:source"),
    S("resource_type:model", resource_type="test"),
    # config
    S("config.materialized:incremental"),
    S("config.materialized:ephemeral"),
    S("config.materialized:view"),
    S("config.materialized:table"),
    S("config.tags:pii"),
    S("config.severity:warn"),
    S("config.meta.owner:finance@gen.example"),
    S("config.access:private"),
    S("config.group:marketing"),
    # sources, exposures
    S("source:app"),
    S("source:crm.sessions+"),
    S("source:*"),
    S("source:gen_shop.app.orders"),
    S("exposure:board_pack"),
    S("+exposure:*"),
    # tests
    S("test_type:generic"),
    S("test_type:singular"),
    S("test_type:data"),
    S("test_name:not_null"),
    S("test_name:unique"),
    S("test_name:relationships"),
    S("test_name:accepted_values"),
    S("test_name:accepted_*"),
    # access, groups
    S("access:public"),
    S("access:protected"),
    S("access:private"),
    S("group:finance"),
    S("group:mark*"),
    # indirect selection
    S(INT_HUB, indirect_selection="cautious"),
    S(INT_HUB, indirect_selection="buildable"),
    S(INT_HUB, indirect_selection="empty"),
    S(f"{INT_HUB}+", indirect_selection="cautious"),
    S(f"{INT_HUB}+", indirect_selection="buildable"),
    S(f"+{MART_HUB}", indirect_selection="cautious"),
    S(f"{STG_HUB} {INT_HUB}", indirect_selection="buildable"),
    S("tag:marts", exclude=MART_HUB, indirect_selection="cautious"),
    # YAML selectors
    Case(selector="finance_marts"),
    Case(selector="staging_or_pii"),
    Case(selector="hub_lineage"),
    Case(selector="marts_not_incremental"),
    Case(selector="exposures_upstream_cautious"),
    Case(selector="nested"),
    Case(selector="hub_lineage", indirect_selection="buildable"),
]

STATEFUL: list[Case] = [
    S("state:modified", state=True),
    S("state:modified+", state=True),
    S("+state:modified", state=True),
    S("state:modified+1", state=True),
    S("@state:modified", state=True),
    S("state:new", state=True),
    S("state:old", state=True),
    S("state:unmodified", state=True),
    S("state:modified.body", state=True),
    S("state:modified.configs", state=True),
    S("state:modified.relation", state=True),
    S("state:modified.persisted_descriptions", state=True),
    S("state:modified.macros", state=True),
    S("state:modified.contract", state=True),
    S("state:modified,resource_type:model", state=True),
    S("state:modified+", exclude="state:modified.body", state=True),
    S("state:modified+", indirect_selection="cautious", state=True),
    S("state:modified+", indirect_selection="buildable", state=True),
    S("state:modified+,tag:finance", state=True),
]

CASES = STATELESS + STATEFUL


def _key(case: Case) -> str:
    return case.key + (" --state" if case.state else "")


@dataclass
class World:
    project: Generated
    current: Selector
    stateful: Selector
    answers: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("generated")
    generate_project(root / "reference", models=MODELS, seed=SEED)
    project = generate_project(root / "current", models=MODELS, seed=SEED, edited=True)
    state_dir = root / "state"
    profiles = write_profile(root / "profiles", duckdb_path=root / "generated.duckdb").parent
    request = {
        "project": str(root / "current"),
        "state_project": str(root / "reference"),
        "state_dir": str(state_dir),
        "profiles": str(profiles),
        "profile": PROFILE_NAME,
        "queries": [[_key(case), case.dbt_args(state_dir)] for case in CASES],
    }
    request_path, answers_path = root / "request.json", root / "answers.json"
    request_path.write_text(json.dumps(request))
    done = subprocess.run(
        [sys.executable, "-c", _PARSE_STATE + _LS_RUNNER, str(request_path), str(answers_path)],
        cwd=root / "current",
        env=_dbt_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    graph = read_manifest((root / "current" / "target" / "manifest.json").read_bytes()).graph
    state = read_manifest((state_dir / "manifest.json").read_bytes()).graph
    return World(
        project=project,
        current=Selector(graph),
        stateful=Selector(graph, state=state),
        answers=json.loads(answers_path.read_text()),
    )


@pytest.mark.parametrize("case", CASES, ids=_key)
def test_lockgate_selects_what_dbt_ls_lists_on_a_generated_project(world: World, case: Case) -> None:
    answer = world.answers[_key(case)]
    assert "ok" in answer, f"dbt ls failed: {answer}"
    ours = case.ours(world.stateful if case.state else world.current)
    assert ours == answer["ok"], _diff(answer["ok"], ours)


def test_the_generated_project_is_shaped_like_a_real_one(world: World) -> None:
    graph = world.current.graph
    nodes = graph.nodes.values()
    types = Counter(n.resource_type for n in nodes)
    assert types["model"] == MODELS + 3  # +1 new, -1 removed, +3 extra version files
    assert types["seed"] >= 3
    assert types["source"] >= 3
    assert types["exposure"] == 4
    assert types["test"] > 400
    fan_in = Counter(
        sum(1 for p in n.depends_on_nodes if not p.startswith("source.")) for n in nodes if n.resource_type == "model"
    )
    assert fan_in[1] > fan_in[2] > 0
    assert sum(count for parents, count in fan_in.items() if parents >= 5) >= 5
    children = Counter(p for n in nodes if n.resource_type == "model" for p in n.depends_on_nodes)
    assert max(children.values()) >= 20, "hub models have many children"
    assert len(graph.selectors) >= 5


def test_every_expression_is_answered_and_most_select_something(world: World) -> None:
    assert len(CASES) >= 60
    answers = [world.answers[_key(case)].get("ok") for case in CASES]
    assert all(answer is not None for answer in answers)
    empty = [_key(case) for case, answer in zip(CASES, answers, strict=True) if not answer]
    # the only expected empty answers: nothing in this project has a contract, a macro or persisted docs
    assert set(empty) <= {
        _key(S("state:modified.macros", state=True)),
        _key(S("state:modified.contract", state=True)),
        _key(S("state:modified.persisted_descriptions", state=True)),
        _key(S("state:modified.relation", state=True)),
    }, empty
    edits = world.project.edits

    def models(select: str) -> set[str]:
        uids = world.answers[_key(S(select, state=True))]["ok"]
        return {uid.rsplit(".", 1)[1] for uid in uids if uid.startswith("model.")}

    assert models("state:modified") == {edits.body, edits.materialization, edits.new}
    assert models("state:modified.body") == {edits.body, edits.new}
    assert models("state:modified.configs") == {edits.materialization, edits.new}
    assert f"model.gen_shop.{edits.removed}" not in world.current.graph.nodes


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    generate_project(first, models=120, seed=3)
    generate_project(second, models=120, seed=3)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
