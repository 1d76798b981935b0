"""Lockgate's selection engine against real ``dbt ls`` (dbt-core 1.11, dbt-duckdb): same expressions, same
unique_ids, every method and operator.

The project is a temporary copy of the demo project plus what the demo lacks for some methods (a versioned
model with a group and access levels, a private model, a disabled model, an analysis, a YAML snapshot, a
semantic model with a metric and a saved query, more YAML selectors); the shipped demo stays as it is.
A second copy, edited (a model body, a macro, configs, an alias, a contract column type, a seed, a source's
freshness; a new model; an analysis removed), is the *current* project; the first one, built and its
sources' freshness checked, is the ``--state``: its manifest, run_results.json and sources.json (one
source's ``max_loaded_at`` moved back a day, so that the current one is ``fresher``).

dbt runs once per module, in one subprocess: ``dbtRunner`` parses the current project once, then runs
``dbt ls --output json --output-keys unique_id`` for every expression on that manifest (a few ms each,
instead of four seconds per CLI call); one expression is also checked through the real CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.demo.build import DEMO_PROJECT, PROFILE_NAME, generate_artifacts, write_profile
from services.ingestion.artifacts import read_manifest, read_run_results, read_sources
from services.planning.selection.engine import (
    FreshnessComparison,
    Selector,
    resource_types_from_args,
)
from services.shared.errors import ContractViolationError
from tests.corpus import corpus_path
from tests.unit.ingestion.test_diff_corpus import CASES as CORPUS_CASES
from tests.unit.ingestion.test_diff_corpus import load as load_corpus
from tests.unit.ingestion.test_diff_corpus import ls_line

# ---------------------------------------------------------------------------------------------- the project

EXTRA_FILES: dict[str, str] = {
    "models/marts/_extras.yml": """
groups:
  - name: finance
    owner:
      name: Finance Analytics
      email: finance@lockgate.example

models:
  - name: plan_prices
    description: Prices per plan, versioned (v1 old, v2 latest, v3 prerelease).
    latest_version: 2
    config:
      group: finance
      access: public
      tags: ["pricing"]
    versions:
      - v: 1
        config:
          access: protected
      - v: 2
      - v: 3
        config:
          materialized: view
  - name: finance_kpis
    description: A private model of the finance group.
    config:
      group: finance
      access: private
      meta:
        tier_owner:
          team: finance
""",
    "models/marts/plan_prices_v1.sql": "select plan_id, price_cents from {{ ref('stg_shop__plans') }}\n",
    "models/marts/plan_prices_v2.sql": (
        "select plan_id, price_cents, {{ plan_label('tier') }} as label from {{ ref('stg_shop__plans') }}\n"
    ),
    "models/marts/plan_prices_v3.sql": (
        "select plan_id, price_cents, monthly_price_cents from {{ ref('stg_shop__plans') }}\n"
    ),
    "models/marts/finance_kpis.sql": "select count(*) as plans from {{ ref('plan_prices', v=2) }}\n",
    "models/marts/legacy_revenue.sql": "{{ config(enabled=false) }}\nselect 1 as x\n",
    "macros/plan_label.sql": "{% macro plan_label(column) -%}\n    upper({{ column }})\n{%- endmacro %}\n",
    "analyses/plan_count.sql": "select count(*) from {{ ref('dim_plans') }}\n",
    "analyses/old_analysis.sql": "select 1 as one\n",
    "snapshots/plans_snapshot.yml": """
snapshots:
  - name: plans_snapshot
    relation: ref('stg_shop__plans')
    config:
      unique_key: plan_id
      strategy: check
      check_cols: all
      tags: ["history"]
""",
    "models/semantic/metricflow_time_spine.sql": (
        "select cast(range as date) as date_day from range(date '2026-01-01', date '2027-01-01', interval 1 day)\n"
    ),
    "models/semantic/_semantic.yml": """
models:
  - name: metricflow_time_spine
    time_spine:
      standard_granularity_column: date_day
    columns:
      - name: date_day
        granularity: day

semantic_models:
  - name: daily_revenue
    model: ref('fct_daily_revenue')
    defaults:
      agg_time_dimension: revenue_date
    primary_entity: daily_plan_revenue
    entities:
      - name: plan
        type: foreign
        expr: plan_id
    dimensions:
      - name: revenue_date
        type: time
        type_params:
          time_granularity: day
    measures:
      - name: amount_cents
        agg: sum

metrics:
  - name: revenue_cents
    label: Revenue (cents)
    type: simple
    type_params:
      measure: amount_cents
    config:
      group: finance
      tags: ["kpi"]

saved_queries:
  - name: revenue_by_day
    query_params:
      metrics:
        - revenue_cents
      group_by:
        - TimeDimension('metric_time', 'day')
""",
}

MORE_SELECTORS = """
  - name: staging_or_marts
    definition:
      union:
        - method: tag
          value: staging
        - tag:marts
        - exclude:
            - dim_customers
  - name: marts_views
    definition:
      intersection:
        - tag:marts
        - method: config.materialized
          value: view
  - name: plans_children_cautious
    definition:
      method: fqn
      value: stg_shop__plans
      children: true
      children_depth: 1
      indirect_selection: cautious
  - name: reuse_nightly
    definition:
      union:
        - method: selector
          value: nightly_marts
        - "+source:shop.customers"
  - name: around_dim_plans
    definition:
      method: fqn
      value: dim_plans
      childrens_parents: true
      exclude:
        - "resource_type:seed"
  - name: two_up_no_tests
    definition:
      method: fqn
      value: dim_customers
      parents: true
      parents_depth: 2
      indirect_selection: empty
  - name: depth_zero_is_unlimited
    definition:
      method: tag
      value: marts
      parents: true
      parents_depth: 0
  - name: union_of_intersections
    definition:
      union:
        - intersection:
            - "tag:marts"
            - "resource_type:model"
            - exclude:
                - "config.materialized:incremental"
        - "source:shop"
        - method: test_name
          value: not_null
          exclude:
            - "tag:staging"
  - name: state_plus
    definition:
      method: state
      value: modified
      children: true
"""

# (file, old text, new text): the current project differs from the state by these edits
EDITS: tuple[tuple[str, str, str], ...] = (
    ("models/marts/dim_plans.sql", "from {{ ref('stg_shop__plans') }}", "from {{ ref('stg_shop__plans') }}\n-- edited"),
    ("macros/plan_label.sql", "upper({{ column }})", "lower({{ column }})"),
    (
        "dbt_project.yml",
        '      +tags: ["marts", "nightly"]',
        '      +tags: ["marts", "nightly"]\n      revenue_by_month:\n        +materialized: view',
    ),
    (
        "dbt_project.yml",
        '      +tags: ["intermediate"]',
        '      +tags: ["intermediate"]\n      int_customer_latest_event:\n        +alias: int_latest_event',
    ),
    (
        "models/marts/_marts.yml",
        "      - name: country\n        data_type: varchar",
        "      - name: country\n        data_type: text",
    ),
    (
        "seeds/raw_plans.csv",
        "team_m,Team Monthly,team,9900,month",
        "team_m,Team Monthly,team,9900,month\nteam_y,Team Yearly,team,99000,year",
    ),
    ("models/staging/_shop__sources.yml", "{count: 3650, period: day}", "{count: 3000, period: day}"),
)
NEW_FILES = {"models/marts/new_model.sql": "select 1 as one from {{ ref('dim_plans') }}\n"}
REMOVED_FILES = ("analyses/old_analysis.sql",)
OLDER_SOURCE = "source.lockgate_demo.shop.customers"
"""In the state's sources.json this source was loaded a day earlier: the current run is fresher."""

_NOT_COPIED = shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb", "*.duckdb.wal", ".user.yml")


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))


def _edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text()
    assert old in text, f"{name} no longer contains {old!r}: update EDITS"
    path.write_text(text.replace(old, new, 1))


# ---------------------------------------------------------------------------------------------- dbt ls, batched

_LS_RUNNER = r"""
import json, sys
from dbt.cli.main import dbtRunner
request = json.loads(open(sys.argv[1]).read())
common = ["--project-dir", request["project"], "--profiles-dir", request["profiles"], "--profile", request["profile"],
          "--quiet"]
parsed = dbtRunner().invoke(["parse", *common])
if not parsed.success:
    raise SystemExit(f"dbt parse failed: {parsed.exception}")
runner = dbtRunner(manifest=parsed.result)
answers = {}
for key, args in request["queries"]:
    done = runner.invoke(["ls", *args, "--output", "json", "--output-keys", "unique_id", *common])
    if done.success:
        answers[key] = {"ok": sorted(json.loads(line)["unique_id"] for line in done.result)}
    else:
        answers[key] = {"error": str(done.exception)}
open(sys.argv[2], "w").write(json.dumps(answers))
"""


def _dbt_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_VERSION_CHECK="false", DO_NOT_TRACK="1")
    return env


@dataclass(frozen=True)
class Case:
    """One ``dbt ls`` invocation: the flags, and the same arguments for ``Selector.select``."""

    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    indirect_selection: str | None = None
    resource_type: str | None = None
    state: bool = field(default=False)

    @property
    def key(self) -> str:
        return " ".join(f"--{flag.replace('_', '-')} {value!r}" for flag, value in self._flags())

    def _flags(self) -> list[tuple[str, str]]:
        flags = [
            ("select", self.select),
            ("exclude", self.exclude),
            ("selector", self.selector),
            ("indirect_selection", self.indirect_selection),
            ("resource_type", self.resource_type),
        ]
        return [(flag, value) for flag, value in flags if value is not None]

    def dbt_args(self, state_dir: Path) -> list[str]:
        args: list[str] = []
        for flag, value in self._flags():
            args += [f"--{flag.replace('_', '-')}", value]
        if self.state:
            args += ["--state", str(state_dir)]
        return args

    def ours(self, selector: Selector) -> list[str]:
        return selector.select(
            self.select,
            exclude=self.exclude,
            selector=self.selector,
            indirect_selection=self.indirect_selection or "eager",
            resource_types=resource_types_from_args([self.resource_type] if self.resource_type else None),
        )


def S(select: str, **kwargs: Any) -> Case:  # noqa: N802 - reads like the flag
    return Case(select=select, **kwargs)


STATELESS: list[Case] = [
    # names, fqn paths, wildcards, versions
    S("stg_shop__plans"),
    S("staging"),
    S("lockgate_demo.marts"),
    S("marts.*"),
    S("*customers*"),
    S("stg_*"),
    S("lockgate_demo"),
    S("*"),
    S("fqn:*"),
    S("plan_prices"),
    S("plan_prices.v2"),
    S("plan_prices_v1"),
    S("marts.plan_prices.v3"),
    S("v2"),
    S("nothing_matches_this"),
    # graph operators
    S("+dim_customers"),
    S("dim_customers+"),
    S("1+dim_customers"),
    S("dim_customers+1"),
    S("2+revenue_by_month+1"),
    S("0+dim_customers"),
    S("@stg_shop__plans"),
    S("@source:shop.customers"),
    S("@dim_plans", resource_type="all"),
    # unions, intersections, excludes
    S("tag:staging tag:marts"),
    S("tag:staging,tag:nightly"),
    S("tag:marts,resource_type:model"),
    S("tag:marts,+dim_customers"),
    S("stg_shop__plans  dim_plans"),
    S("stg_shop__plans,,dim_plans"),
    S(""),
    S("tag:marts", exclude="dim_customers"),
    S("tag:marts", exclude="tag:nightly,resource_type:test"),
    S("+revenue_by_month", exclude="source:* raw_plans"),
    Case(exclude="tag:staging"),
    Case(exclude="resource_type:test"),
    Case(),
    Case(resource_type="all"),
    # tag, path, file, package, resource_type
    S("tag:nightly"),
    S("tag:pricing"),
    S("tag:*a*"),
    S("tag:finance"),
    S("tag:kpi"),
    S("tag:history"),
    S("tag:nightly", resource_type="all"),
    S("path:models/staging"),
    S("models/staging"),
    S("path:models/marts/_marts.yml"),
    S("path:models/*/dim_*.sql"),
    S("path:**/*.yml"),
    S("path:models"),
    S("path:seeds"),
    S("path:tests"),
    S("path:snapshots"),
    S("path:models/sta*"),
    S("file:dim_plans.sql"),
    S("dim_plans.sql"),
    S("file:dim_plans"),
    S("file:_marts.yml"),
    S("file:*.csv"),
    S("package:lockgate_demo"),
    S("package:this"),
    S("package:lock*"),
    S("resource_type:seed"),
    S("resource_type:test"),
    S("resource_type:unit_test"),
    S("resource_type:analysis", resource_type="all"),
    S("resource_type:snapshot"),
    S("resource_type:semantic_model"),
    S("resource_type:saved_query"),
    S("resource_type:metric"),
    S("resource_type:model", resource_type="test"),
    # config
    S("config.materialized:view"),
    S("config.materialized:table"),
    S("config.materialized:incremental"),
    S("config.severity:WARN"),
    S("config.severity:error"),
    S("config.contract.enforced:true"),
    S("config.meta.owner:finance@lockgate.example"),
    S("config.meta.pii:false"),
    S("config.meta.tier_owner.team:finance"),
    S("config.tags:nightly"),
    S("config.event_time:occurred_at"),
    S("config.access:private"),
    S("config.group:finance"),
    S("config.incremental_strategy:microbatch"),
    S("config.enabled:true"),
    # sources, exposures, metrics, semantic models, saved queries, unit tests
    S("source:shop"),
    S("source:shop.customers"),
    S("source:lockgate_demo.shop.*"),
    S("source:shop+"),
    S("source:*"),
    S("exposure:revenue_dashboard"),
    S("+exposure:revenue_dashboard"),
    S("exposure:*"),
    S("metric:revenue_cents"),
    S("+metric:revenue_cents+"),
    S("saved_query:revenue_by_day"),
    S("+saved_query:revenue_by_day"),
    S("semantic_model:daily_revenue"),
    S("semantic_model:lockgate_demo.daily_*"),
    S("unit_test:yearly_price_is_spread_over_twelve_months"),
    S("unit_test:*"),
    # tests
    S("test_type:generic"),
    S("test_type:singular"),
    S("test_type:unit"),
    S("test_type:data"),
    S("test_type:sing"),
    S("test_name:unique"),
    S("test_name:not_null"),
    S("test_name:relationships"),
    S("test_name:accepted_*"),
    S("test_name:yearly*"),
    # versions, access, groups
    S("version:latest"),
    S("version:old"),
    S("version:prerelease"),
    S("version:none"),
    S("access:public"),
    S("access:private"),
    S("access:protected"),
    S("group:finance"),
    S("group:fin*"),
    # indirect selection
    S("stg_shop__plans", indirect_selection="cautious"),
    S("stg_shop__plans", indirect_selection="buildable"),
    S("stg_shop__plans", indirect_selection="empty"),
    S("stg_shop__plans+", indirect_selection="cautious"),
    S("dim_customers dim_plans", indirect_selection="cautious"),
    S("dim_customers dim_plans", indirect_selection="buildable"),
    S("+dim_customers", indirect_selection="buildable"),
    S("stg_shop__customers stg_shop__subscription_events", indirect_selection="cautious"),
    S("tag:marts", exclude="fct_subscription_events", indirect_selection="cautious"),
    # YAML selectors
    Case(selector="nightly_marts"),
    Case(selector="revenue_dashboard_lineage"),
    Case(selector="staging_or_marts"),
    Case(selector="marts_views"),
    Case(selector="plans_children_cautious"),
    Case(selector="reuse_nightly"),
    Case(selector="around_dim_plans"),
    Case(selector="two_up_no_tests"),
    Case(selector="depth_zero_is_unlimited"),
    Case(selector="union_of_intersections"),
    Case(selector="nightly_marts", indirect_selection="cautious"),
]

STATEFUL: list[Case] = [
    S("state:modified", state=True),
    S("state:modified+", state=True),
    S("+state:modified", state=True),
    S("state:modified+1", state=True),
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
    S("state:modified", exclude="state:modified.body", state=True),
    S("state:modified+", indirect_selection="cautious", state=True),
    S("state:new state:modified.body", resource_type="all", state=True),
    Case(selector="state_plus", state=True),
    S("result:success", state=True),
    S("result:pass", state=True),
    S("result:warn", state=True),
    S("result:warn+", state=True),
    S("result:success+", state=True),
    S("result:error", state=True),
    S("result:success,state:modified", state=True),
    S("source_status:fresher", state=True),
    S("source_status:fresher+", state=True),
    S("source_status:stale", state=True),
]

# both dbt and Lockgate refuse these
ERRORS: list[Case] = [
    S("foo:bar"),
    S("@dim_plans+"),
    S("resource_type:bogus"),
    S("test_type:bogus"),
    S("source:a.b.c.d"),
    S("exposure:a.b.c"),
    S("version:newest"),
    Case(selector="nonexistent"),
    S("state:modified"),
    S("state:bogus", state=True),
    S("result:success"),
]

ALL_CASES = STATELESS + STATEFUL + ERRORS


@dataclass
class World:
    selector: Selector
    answers: dict[str, dict[str, Any]]
    current_project: Path
    profiles: Path
    state_dir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("selection")
    base = root / "base"
    shutil.copytree(DEMO_PROJECT, base, ignore=_NOT_COPIED)
    _write(base, EXTRA_FILES)
    with (base / "selectors.yml").open("a") as handle:
        handle.write(MORE_SELECTORS)
    current = root / "current"
    shutil.copytree(base, current)
    for name, old, new in EDITS:
        _edit(current, name, old, new)
    _write(current, NEW_FILES)
    for name in REMOVED_FILES:
        (current / name).unlink()

    # the state: the base project built, its sources' freshness checked
    state_dir = root / "state"
    built = generate_artifacts(base, state_dir, commands=("build", "source freshness"))
    assert built.manifest
    assert built.run_results
    assert built.sources
    current_sources = json.loads(built.sources.read_bytes())
    previous_sources = json.loads(built.sources.read_bytes())
    for result in previous_sources["results"]:
        if result["unique_id"] == OLDER_SOURCE:
            result["max_loaded_at"] = result["max_loaded_at"].replace("2026-06-30", "2026-06-29")
            assert "2026-06-29" in result["max_loaded_at"], result
    built.sources.write_text(json.dumps(previous_sources))
    (current / "target").mkdir()
    (current / "target" / "sources.json").write_text(json.dumps(current_sources))

    # dbt ls for every case, in one process
    profiles = write_profile(root / "profiles", duckdb_path=root / "current.duckdb").parent
    request = {
        "project": str(current),
        "profiles": str(profiles),
        "profile": PROFILE_NAME,
        "queries": [[case.key + (" --state" if case.state else ""), case.dbt_args(state_dir)] for case in ALL_CASES],
    }
    request_path, answers_path = root / "request.json", root / "answers.json"
    request_path.write_text(json.dumps(request))
    done = subprocess.run(
        [sys.executable, "-c", _LS_RUNNER, str(request_path), str(answers_path)],
        cwd=current,
        env=_dbt_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    answers = json.loads(answers_path.read_text())

    graph = read_manifest((current / "target" / "manifest.json").read_bytes()).graph
    state = read_manifest(built.manifest.read_bytes()).graph
    results = {r.unique_id: r.status for r in read_run_results(built.run_results.read_bytes()).results}
    freshness = FreshnessComparison(
        previous=read_sources(json.dumps(previous_sources).encode()).results,
        current=read_sources(json.dumps(current_sources).encode()).results,
    )
    selector = Selector(graph, state=state, results=results, freshness=freshness)
    return World(selector, answers, current, profiles, state_dir)


def _no_state(world: World) -> Selector:
    return Selector(world.selector.graph)


def _answer(world: World, case: Case) -> dict[str, Any]:
    return world.answers[case.key + (" --state" if case.state else "")]


def _diff(dbt: list[str], ours: list[str]) -> str:
    missing, extra = sorted(set(dbt) - set(ours)), sorted(set(ours) - set(dbt))
    return f"dbt selected {len(dbt)}, Lockgate {len(ours)}\n  only dbt: {missing}\n  only Lockgate: {extra}"


@pytest.mark.parametrize("case", STATELESS + STATEFUL, ids=lambda c: c.key + (" --state" if c.state else ""))
def test_lockgate_selects_what_dbt_ls_lists(world: World, case: Case) -> None:
    answer = _answer(world, case)
    assert "ok" in answer, f"dbt ls failed: {answer}"
    engine = world.selector if case.state else _no_state(world)
    ours = case.ours(engine)
    assert ours == answer["ok"], _diff(answer["ok"], ours)


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: c.key + (" --state" if c.state else ""))
def test_lockgate_refuses_what_dbt_ls_refuses(world: World, case: Case) -> None:
    answer = _answer(world, case)
    assert "error" in answer, f"dbt ls accepted it: {answer}"
    engine = world.selector if case.state else _no_state(world)
    with pytest.raises(ContractViolationError):
        case.ours(engine)


def test_the_cases_cover_every_method_and_operator(world: World) -> None:
    text = (
        " ".join(f"{c.select or ''} {c.exclude or ''}" for c in STATELESS + STATEFUL)
        + " "
        + json.dumps(world.selector.graph.selectors)
    )
    for method in (
        "tag:",
        "path:",
        "file:",
        "package:",
        "config.",
        "resource_type:",
        "source:",
        "exposure:",
        "metric:",
        "saved_query:",
        "semantic_model:",
        "unit_test:",
        "test_type:",
        "test_name:",
        "version:",
        "access:",
        "group:",
        "state:",
        "result:",
        "source_status:",
        "fqn:",
        "@",
        "+",
    ):
        assert method in text, method
    assert len(STATELESS + STATEFUL) >= 60
    # every case selects something somewhere, and the project has every resource type dbt ls lists
    types = {n.resource_type for n in world.selector.graph.nodes.values()}
    assert {
        "model",
        "seed",
        "test",
        "unit_test",
        "snapshot",
        "source",
        "exposure",
        "metric",
        "semantic_model",
        "saved_query",
        "analysis",
    } <= types
    state_answers = [_answer(world, c)["ok"] for c in STATEFUL]
    assert all(state_answers[:3]), "state:modified must select something"


def test_dbt_runner_batch_agrees_with_the_cli(world: World) -> None:
    """The batched dbtRunner answers are what the ``dbt ls`` command prints (one check, ~5 s)."""
    case = S("state:modified+", exclude="resource_type:test", state=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dbt.cli.main",
            "ls",
            *case.dbt_args(world.state_dir),
            "--output",
            "json",
            "--output-keys",
            "unique_id",
            "--quiet",
            "--project-dir",
            str(world.current_project),
            "--profiles-dir",
            str(world.profiles),
            "--profile",
            PROFILE_NAME,
        ],
        cwd=world.current_project,
        env=_dbt_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    printed = sorted(json.loads(line)["unique_id"] for line in done.stdout.splitlines() if line.startswith("{"))
    assert printed
    assert case.ours(world.selector) == printed, _diff(printed, case.ours(world.selector))


@pytest.mark.parametrize(("project", "base", "edited_model", "count"), CORPUS_CASES)
def test_state_modified_plus_on_the_corpus_matches_dbt_ls(
    project: str, base: str, edited_model: str, count: int
) -> None:
    edited_name = "manifest.edited.json" if project == "jaffle_shop_duckdb" else "manifest.edited.json.gz"
    prior, new = load_corpus(project, *base.split("/")), load_corpus(project, "state_modified", edited_name)
    lines = corpus_path(project, "state_modified", "dbt_ls_state_modified_plus.txt").read_text().splitlines()
    by_line: dict[str, list[str]] = {}
    for uid, node in new.nodes.items():
        by_line.setdefault(ls_line(node), []).append(uid)
    expected = sorted(by_line[line][0] for line in lines)
    ours = Selector(new, state=prior).select("state:modified+")
    assert ours == expected, _diff(expected, ours)
    assert len(ours) == count
    assert edited_model in ours
