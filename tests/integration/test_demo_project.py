"""The demo dbt project built with real dbt (dbt-duckdb, no network): the artifacts exist and say what the
project holds, the build passes but for its one warn-severity test, the source folder is left byte-identical,
and a broken project raises DbtCommandError carrying dbt's own message."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.demo.build import DEFAULT_COMMANDS, DEMO_PROJECT, DemoArtifacts, generate_artifacts, write_profile
from services.shared.errors import DbtCommandError

PROJECT = "lockgate_demo"
MODELS = {
    "stg_shop__customers",
    "stg_shop__plans",
    "stg_shop__subscription_events",
    "int_customer_latest_event",
    "dim_customers",
    "dim_plans",
    "fct_subscription_events",
    "fct_daily_revenue",
    "revenue_by_month",
}
SEEDS = {"raw_customers", "raw_plans", "raw_subscription_events"}
WARN_TEST = "not_null_stg_shop__customers_country"
"""The one warn-severity test: a demo customer has no country."""


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes (and every directory's name), sorted."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_dir():
            digest.update(b"D\0" + relative.encode() + b"\0")
        else:
            digest.update(b"F\0" + relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def load(path: Path | None) -> Any:
    assert path is not None
    return json.loads(path.read_bytes())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoArtifacts, str, str]:
    before = tree_digest(DEMO_PROJECT)
    artifacts = generate_artifacts(DEMO_PROJECT, tmp_path_factory.mktemp("demo-artifacts"))
    return artifacts, before, tree_digest(DEMO_PROJECT)


@pytest.fixture(scope="module")
def artifacts(generated: tuple[DemoArtifacts, str, str]) -> DemoArtifacts:
    return generated[0]


@pytest.fixture(scope="module")
def manifest(artifacts: DemoArtifacts) -> Any:
    return load(artifacts.manifest)


def test_source_folder_is_byte_identical_after_generation(generated: tuple[DemoArtifacts, str, str]) -> None:
    _, before, after = generated
    assert before == after
    assert not any((DEMO_PROJECT / name).exists() for name in ("target", "logs", "dbt_packages"))
    assert not list(DEMO_PROJECT.rglob("*.duckdb*"))


def test_every_artifact_is_written_and_is_json(artifacts: DemoArtifacts) -> None:
    paths = [artifacts.manifest, artifacts.catalog, artifacts.run_results, artifacts.sources]
    names = ["manifest.json", "catalog.json", "run_results.json", "sources.json"]
    for path, name in zip(paths, names, strict=True):
        assert path is not None
        assert path.name == name
        assert path.is_file()
        assert load(path)["metadata"]["dbt_version"] == artifacts.dbt_version
    assert artifacts.dbt_version.startswith("1.11.")
    assert [timing.command for timing in artifacts.timings] == list(DEFAULT_COMMANDS)
    assert all(timing.seconds > 0 for timing in artifacts.timings)
    assert artifacts.seconds("build") > 0


def test_manifest_holds_the_demo_project(manifest: Any) -> None:
    nodes = manifest["nodes"]
    by_type = Counter(node["resource_type"] for node in nodes.values())
    assert {node["name"] for node in nodes.values() if node["resource_type"] == "model"} == MODELS
    assert {node["name"] for node in nodes.values() if node["resource_type"] == "seed"} == SEEDS
    assert by_type["test"] >= 20
    assert manifest["metadata"]["project_name"] == PROJECT

    test_macros = {node["test_metadata"]["name"] for node in nodes.values() if node.get("test_metadata")}
    assert {"not_null", "unique", "relationships", "accepted_values"} <= test_macros
    singular = [n for n in nodes.values() if n["resource_type"] == "test" and not n.get("test_metadata")]
    assert [n["name"] for n in singular] == ["assert_daily_revenue_reconciles_with_events"]
    warn = [n for n in nodes.values() if n["resource_type"] == "test" and n["config"]["severity"].lower() == "warn"]
    assert [n["name"] for n in warn] == [WARN_TEST]
    assert list(manifest["unit_tests"]) == [
        "unit_test.lockgate_demo.stg_shop__plans.yearly_price_is_spread_over_twelve_months"
    ]

    assert set(manifest["sources"]) == {
        "source.lockgate_demo.shop.customers",
        "source.lockgate_demo.shop.subscription_events",
    }
    for source in manifest["sources"].values():
        assert source["loaded_at_field"] == "_loaded_at"
        assert source["freshness"]["warn_after"] == {"count": 3650, "period": "day"}

    exposure = manifest["exposures"]["exposure.lockgate_demo.revenue_dashboard"]
    assert exposure["type"] == "dashboard"
    assert set(exposure["depends_on"]["nodes"]) == {
        "model.lockgate_demo.revenue_by_month",
        "model.lockgate_demo.dim_customers",
    }
    assert set(manifest["selectors"]) == {"nightly_marts", "revenue_dashboard_lineage"}
    assert "macro.lockgate_demo.cents_to_currency" in manifest["macros"]
    assert "macro.lockgate_demo.cents_to_currency" in nodes["model.lockgate_demo.dim_customers"]["depends_on"]["macros"]


def test_manifest_configs_contract_incremental_microbatch_tags_meta(manifest: Any) -> None:
    nodes = manifest["nodes"]
    dim = nodes["model.lockgate_demo.dim_customers"]
    assert dim["config"]["contract"]["enforced"] is True
    assert dim["columns"]["customer_id"]["data_type"] == "integer"
    assert dim["config"]["meta"]["owner"] == "growth@lockgate.example"
    assert dim["description"]
    assert {"marts", "nightly"} <= set(dim["tags"])

    incremental = nodes["model.lockgate_demo.fct_subscription_events"]["config"]
    assert incremental["materialized"] == "incremental"
    assert incremental["unique_key"] == "event_id"

    microbatch = nodes["model.lockgate_demo.fct_daily_revenue"]["config"]
    assert microbatch["incremental_strategy"] == "microbatch"
    assert microbatch["event_time"] == "revenue_date"
    assert microbatch["batch_size"] == "month"
    assert microbatch["begin"].startswith("2026-01-01")
    upstream = nodes["model.lockgate_demo.stg_shop__subscription_events"]
    assert upstream["config"]["event_time"] == "occurred_at"
    assert upstream["config"]["materialized"] == "view"
    assert "staging" in upstream["tags"]


def test_build_passes_but_for_exactly_one_warning(artifacts: DemoArtifacts) -> None:
    run_results = load(artifacts.run_results)
    assert run_results["args"]["which"] == "build"
    statuses = {result["unique_id"]: result["status"] for result in run_results["results"]}
    warned = [uid for uid, status in statuses.items() if status == "warn"]
    assert [uid.split(".")[2] for uid in warned] == [WARN_TEST]
    expected = {"model": "success", "seed": "success", "test": "pass", "unit_test": "pass", "exposure": "no-op"}
    for uid, status in statuses.items():
        if uid not in warned:
            assert status == expected[uid.split(".")[0]], (uid, status)
    assert Counter(uid.split(".")[0] for uid in statuses) == Counter(
        {"model": 9, "seed": 3, "test": 26, "unit_test": 1, "exposure": 1}
    )


def test_microbatch_model_ran_in_monthly_batches(artifacts: DemoArtifacts) -> None:
    run_results = load(artifacts.run_results)
    (result,) = [r for r in run_results["results"] if r["unique_id"] == "model.lockgate_demo.fct_daily_revenue"]
    batches = result["batch_results"]
    assert batches["failed"] == []
    # One batch per month from `begin` (2026-01) to the current month, so at least the six with data.
    assert len(batches["successful"]) >= 6
    assert batches["successful"][0] == ["2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"]


def test_catalog_has_column_types_of_the_marts(artifacts: DemoArtifacts) -> None:
    catalog = load(artifacts.catalog)
    columns = catalog["nodes"]["model.lockgate_demo.dim_customers"]["columns"]
    assert {name: column["type"] for name, column in columns.items()} == {
        "customer_id": "INTEGER",
        "email_domain": "VARCHAR",
        "country": "VARCHAR",
        "signed_up_on": "DATE",
        "current_plan_id": "VARCHAR",
        "is_active": "BOOLEAN",
        "lifetime_revenue": "DECIMAL(18,2)",
    }
    for mart in ("dim_plans", "fct_subscription_events", "fct_daily_revenue", "revenue_by_month"):
        node = catalog["nodes"][f"model.lockgate_demo.{mart}"]
        assert node["metadata"]["type"] == "BASE TABLE"
        assert all(column["type"] for column in node["columns"].values())
    assert set(catalog["sources"]) == {
        "source.lockgate_demo.shop.customers",
        "source.lockgate_demo.shop.subscription_events",
    }


def test_sources_json_has_a_freshness_result_per_source(artifacts: DemoArtifacts) -> None:
    sources = load(artifacts.sources)
    results = {result["unique_id"]: result for result in sources["results"]}
    assert set(results) == {"source.lockgate_demo.shop.customers", "source.lockgate_demo.shop.subscription_events"}
    # The snapshot was loaded on 2026-06-30; the 3650-day threshold keeps it passing for a decade.
    assert {result["status"] for result in results.values()} <= {"pass", "warn"}
    assert results["source.lockgate_demo.shop.subscription_events"]["max_loaded_at"].startswith("2026-06-30T23:05:00")


def test_write_profile_is_private_and_names_the_database(tmp_path: Path) -> None:
    path = write_profile(tmp_path / "profiles", duckdb_path=tmp_path / "x.duckdb", threads=3, target="ci")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    profile = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert profile == {
        "lockgate_demo": {
            "target": "ci",
            "outputs": {"ci": {"type": "duckdb", "path": str(tmp_path / "x.duckdb"), "threads": 3}},
        }
    }


def test_a_profile_from_an_environment_quotes_hostile_values(tmp_path: Path) -> None:
    output: dict[str, str | int | bool] = {
        "type": "snowflake",
        "account": 'ac"me: {x}',
        "database": "ANALYTICS\n- evil",
        "client_session_keep_alive": True,
    }
    path = write_profile(tmp_path / "profiles", output=output, target="prod")
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["lockgate_demo"]["outputs"]["prod"] == {
        "threads": 2,
        **output,
    }


def test_a_broken_model_raises_dbt_command_error_with_dbts_message(tmp_path: Path) -> None:
    project = tmp_path / "broken"
    shutil.copytree(DEMO_PROJECT, project)
    (project / "models" / "broken_model.sql").write_text("select 1 as id frm nowhere where\n", encoding="utf-8")
    before = tree_digest(project)
    with pytest.raises(DbtCommandError) as caught:
        generate_artifacts(project, tmp_path / "out", commands=("build --select broken_model",))
    error = caught.value
    assert error.code == "dbt_command_failed"
    assert error.command == "build --select broken_model"
    assert error.returncode == 1
    assert "dbt build --select broken_model failed with exit status 1" in error.message
    assert "broken_model" in error.output_tail
    assert "syntax error" in error.output_tail.lower()
    assert error.output_tail in error.message
    assert tree_digest(project) == before


def test_microbatch_model_rebuilds_a_window_on_a_second_run(tmp_path: Path) -> None:
    partial = "build --select fct_daily_revenue+ --event-time-start 2026-03-01 --event-time-end 2026-05-01"
    artifacts = generate_artifacts(DEMO_PROJECT, tmp_path, commands=("build", partial))
    assert [timing.command for timing in artifacts.timings] == ["build", partial]
    results = {r["unique_id"]: r for r in load(artifacts.run_results)["results"]}
    revenue = results["model.lockgate_demo.fct_daily_revenue"]
    assert revenue["status"] == "success"
    assert revenue["batch_results"] == {
        "successful": [
            ["2026-03-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00"],
            ["2026-04-01T00:00:00+00:00", "2026-05-01T00:00:00+00:00"],
        ],
        "failed": [],
    }
    # The reconciliation test still passes: the rebuilt months replaced their rows, nothing doubled.
    assert results["test.lockgate_demo.assert_daily_revenue_reconciles_with_events"]["status"] == "pass"
