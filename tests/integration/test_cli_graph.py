"""``lockgate ingest``, ``lockgate graph`` and ``lockgate demo`` as subprocesses of the installed entry point,
against a private PostgreSQL database; the demo runs real dbt on the shipped demo project."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from services.demo.build import DEMO_PROJECT
from tests.corpus import corpus_path
from tests.integration.test_cli import Run, as_json, lockgate  # noqa: F401 - the fixture

JAFFLE = "jaffle_shop_duckdb"


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_ingest_prints_the_outcome_and_graph_shows_it(lockgate: Run) -> None:  # noqa: F811
    lockgate("project", "create", "shop", "--repo", "/srv/dbt/shop")
    manifest = str(corpus_path(JAFFLE, "manifest.json"))
    first = as_json(
        lockgate(
            "ingest",
            "shop",
            "--manifest",
            manifest,
            "--run-results",
            str(corpus_path(JAFFLE, "run_results.json")),
            "--json",
        )
    )
    assert {k: first[k] for k in ("graph_version", "nodes", "edges", "added", "changed", "removed", "renamed")} == {
        "graph_version": 1,
        "nodes": 28,
        "edges": 29,
        "added": 28,
        "changed": 0,
        "removed": 0,
        "renamed": 0,
    }
    assert first["events"] >= 3
    assert first["elapsed_ms"] > 0
    again = as_json(
        lockgate(
            "ingest",
            "shop",
            "--manifest",
            manifest,
            "--run-results",
            str(corpus_path(JAFFLE, "run_results.json")),
            "--json",
        )
    )
    assert (again["deduplicated"], again["events"]) == (True, 0)

    graph = as_json(lockgate("graph", "shop", "--json"))
    assert graph["summary"]["version"]["graph_version"] == 1
    assert graph["summary"]["resource_types"] == {"model": 5, "seed": 3, "test": 20}
    assert len(graph["nodes"]) == 28
    human = lockgate("graph", "shop").stdout
    assert "shop graph version 1" in human
    assert "28 nodes, 29 edges" in human


def test_ingest_refuses_bad_input_with_exit_2(lockgate: Run, tmp_path: Path) -> None:  # noqa: F811
    lockgate("project", "create", "shop", "--repo", "/srv/dbt/shop")
    broken = tmp_path / "manifest.json"
    broken.write_text(
        '{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"}, "nodes": ['
    )
    result = lockgate("ingest", "shop", "--manifest", str(broken), expect=2)
    assert "manifest" in result.stderr
    missing = lockgate("ingest", "shop", expect=2)
    assert "--manifest" in missing.stderr
    unknown = lockgate("ingest", "nowhere", "--manifest", str(corpus_path(JAFFLE, "manifest.json")), expect=1)
    assert "nowhere" in unknown.stderr


def test_demo_builds_with_dbt_ingests_and_is_idempotent(lockgate: Run) -> None:  # noqa: F811
    before = tree_hash(DEMO_PROJECT)
    first = as_json(lockgate("demo", "--json", timeout=600))
    assert first["built"] is True
    # A fresh installation shows a completed run: the whole project, planned, approved and run by the runner
    # (its one warn-severity test makes it `warning`).
    run = first["first_run"]
    assert (run["environment_id"], run["select"], run["status"]) == ("dev", "*", "warning"), run
    assert sorted(first["created"]) == ["environment demo/dev", "environment demo/prod", "project demo"]
    ingestion = first["ingestion"]
    assert ingestion["graph_version"] == 1
    assert ingestion["nodes"] > 30
    assert ingestion["unknown_nodes"] == 0
    second = as_json(lockgate("demo", "--json"))
    # Nothing rebuilt, nothing created, the same graph version (the first run's results were ingested since, so
    # the demo's own artifacts are not the last ones any more: they add run history, not a graph version).
    again = second["ingestion"]
    assert (second["built"], second["created"], again["graph_version"], again["new_version"]) == (False, [], 1, False)
    assert second["first_run"] is None  # the project has a run already
    listed = as_json(lockgate("runs", "list", "--project", "demo", "--json"))
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    assert tree_hash(DEMO_PROJECT) == before  # roundtrip level 0: dbt never ran in the project folder

    envs = {e["environment_id"]: e for e in as_json(lockgate("env", "list", "demo", "--json"))}
    assert (envs["dev"]["production"], envs["prod"]["production"]) == (False, True)
    graph = as_json(lockgate("graph", "demo", "--json"))
    kinds = graph["summary"]["resource_types"]
    assert {"model", "seed", "test", "source", "exposure"} <= set(kinds)
    # Parsed with dev's target (the demo is built into dev's warehouse: same database in every relation).
    reparsed = as_json(lockgate("ingest", "demo", "--from-repo", "--env", "dev", "--json"))
    assert (reparsed["graph_version"], reparsed["new_version"], reparsed["added"], reparsed["removed"]) == (
        1,
        False,
        0,
        0,
    )
    assert tree_hash(DEMO_PROJECT) == before
    assert json.loads(json.dumps(graph))["nodes"]


def test_from_repo_parses_any_profile_name_with_the_environments_adapter(lockgate: Run, tmp_path: Path) -> None:  # noqa: F811
    repo = tmp_path / "repo"
    shutil.copytree(DEMO_PROJECT, repo)
    project_yml = repo / "dbt_project.yml"
    project_yml.write_text(project_yml.read_text().replace("profile: lockgate_demo", "profile: somebody_elses"))
    assert "somebody_elses" in project_yml.read_text()
    before = tree_hash(repo)
    lockgate("project", "create", "copy", "--repo", str(repo))
    lockgate("env", "create", "copy", "dev", "--adapter", "duckdb", "--target", f"path={tmp_path / 'dev.duckdb'}")
    outcome = as_json(lockgate("ingest", "copy", "--from-repo", "--env", "dev", "--json"))
    assert (outcome["graph_version"], outcome["new_version"]) == (1, True)
    assert outcome["nodes"] > 30
    assert tree_hash(repo) == before
    assert not (tmp_path / "dev.duckdb").exists()  # parse never connects
    missing = lockgate("ingest", "copy", "--from-repo", "--env", "nope", expect=2)
    assert "nope" in missing.stderr
