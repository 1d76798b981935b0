"""Plan fidelity (what dbt reported against the plan) and how a run ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.events.runs import PlanDeviation
from services.runner.fidelity import compare, executed_from_run_results, outcome
from services.shared.errors import ArtifactError
from tests.unit.runner.test_invocations import item, plan

NO_DEVIATION = PlanDeviation()


def run_results(path: Path, results: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "metadata": {
                    "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                    "dbt_version": "1.11.16",
                    "generated_at": "2026-06-30T00:00:00Z",
                    "invocation_id": "i",
                },
                "results": [
                    {"unique_id": uid, "status": status, "timing": [], "thread_id": "Thread-1", "execution_time": 0.1}
                    for uid, status in results.items()
                ],
                "elapsed_time": 1.0,
                "args": {"which": "build"},
            }
        )
    )
    return path


def test_executed_merges_every_invocation_and_skips_the_ones_that_wrote_nothing(tmp_path: Path) -> None:
    first = run_results(tmp_path / "000" / "run_results.json", {"seed.p.raw": "success", "model.p.a": "error"})
    second = run_results(tmp_path / "001" / "run_results.json", {"model.p.b": "skipped", "test.p.t": "warn"})
    executed = executed_from_run_results([first, tmp_path / "never" / "run_results.json", second])
    assert executed == {"seed.p.raw": "success", "model.p.a": "error", "model.p.b": "skipped", "test.p.t": "warn"}
    assert list(executed) == ["seed.p.raw", "model.p.a", "model.p.b", "test.p.t"]
    assert executed_from_run_results([]) == {}


def test_a_file_that_is_not_run_results_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "run_results.json"
    bad.write_text("{not json")
    with pytest.raises(ArtifactError):
        executed_from_run_results([bad])


def test_compare_finds_unplanned_and_missing_nodes_sorted() -> None:
    p = plan(item("model.p.b"), item("model.p.a", "PARTIAL", window=None), item("model.p.s", "SKIP"))
    assert compare(p, {"model.p.a": "success", "model.p.b": "skipped"}) == NO_DEVIATION
    deviation = compare(p, {"model.p.s": "success", "model.p.z": "success", "model.p.y": "pass"})
    assert deviation == PlanDeviation(
        unplanned=("model.p.s", "model.p.y", "model.p.z"), missing=("model.p.a", "model.p.b")
    )


def test_success_when_every_node_succeeded_passed_or_did_nothing() -> None:
    statuses = {"seed.p.raw": "success", "test.p.t": "pass", "model.p.n": "no-op"}
    assert outcome(statuses, exit_code=0, deviation=NO_DEVIATION) == ("success", "", "3 nodes succeeded")


def test_warning_when_the_only_problems_are_warn_tests() -> None:
    statuses = {"model.p.a": "success", "test.p.w1": "warn", "test.p.w2": "warn"}
    assert outcome(statuses, exit_code=0, deviation=NO_DEVIATION) == (
        "warning",
        "",
        "2 tests warned: test.p.w1, test.p.w2",
    )


def test_failed_names_the_first_failing_nodes_then_counts_the_skips() -> None:
    statuses = {
        "model.p.a": "success",
        "test.p.f1": "fail",
        "model.p.b": "skipped",
        "model.p.e": "error",
        "test.p.w": "warn",
        "model.p.c": "skipped",
        "test.p.f2": "fail",
        "test.p.f3": "fail",
    }
    status, reason, message = outcome(statuses, exit_code=1, deviation=NO_DEVIATION)
    assert (status, reason) == ("failed", "node_failed")
    assert message == "4 nodes failed: test.p.f1 (fail), model.p.e (error), test.p.f2 (fail) and 1 more; 2 skipped"


def test_skips_alone_fail_the_run() -> None:
    status, reason, message = outcome({"model.p.b": "skipped"}, exit_code=0, deviation=NO_DEVIATION)
    assert (status, reason, message) == ("failed", "node_failed", "1 node skipped: model.p.b (skipped)")


def test_unknown_statuses_are_failures() -> None:
    assert outcome({"model.p.m": "partial success"}, exit_code=1, deviation=NO_DEVIATION)[:2] == (
        "failed",
        "node_failed",
    )


def test_dbt_error_when_dbt_could_not_run() -> None:
    assert outcome({}, exit_code=2, deviation=PlanDeviation(missing=("model.p.a",))) == (
        "failed",
        "dbt_error",
        "dbt could not run (exit status 2)",
    )
    assert outcome({}, exit_code=1, deviation=NO_DEVIATION)[1] == "dbt_error"
    assert outcome({"model.p.a": "success"}, exit_code=2, deviation=NO_DEVIATION)[1] == "dbt_error"
    # a failing on-run-end hook: every node fine, dbt still says 1
    assert outcome({"model.p.a": "success"}, exit_code=1, deviation=NO_DEVIATION)[:2] == ("failed", "dbt_error")


def test_any_deviation_fails_even_a_successful_run() -> None:
    deviation = PlanDeviation(unplanned=("model.p.x",), missing=("model.p.y",))
    status, reason, message = outcome({"model.p.x": "success"}, exit_code=0, deviation=deviation)
    assert (status, reason) == ("failed", "plan_mismatch")
    assert message == "dbt executed 1 node not in the plan: model.p.x; dbt never reported 1 planned node: model.p.y"


def test_a_node_failure_is_the_reason_even_with_a_deviation_which_the_message_mentions() -> None:
    # e.g. the runner stopped after a failing invocation: the later invocations' items are missing
    deviation = PlanDeviation(missing=("model.p.later",))
    _, reason, message = outcome({"model.p.x": "error"}, exit_code=1, deviation=deviation)
    assert reason == "node_failed"
    assert (
        message == "1 node failed: model.p.x (error); plan deviation: dbt never reported 1 planned node: model.p.later"
    )


def test_an_empty_run_that_exits_zero_is_a_success() -> None:
    assert outcome({}, exit_code=0, deviation=NO_DEVIATION) == ("success", "", "0 nodes succeeded")
