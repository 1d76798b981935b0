"""dbt's JSON log lines as records and observations: real lines of a dbt-duckdb 1.11 build (a failing test,
a warn-severity test, downstream skips, a microbatch model's batches, a traceback merged in), and edge cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from services.runner.dbtlog import (
    AdapterObs,
    LogRecord,
    NodeFinishedObs,
    NodeLifecycle,
    NodeStartedObs,
    VersionObs,
    display,
    parse_line,
)

FIXTURE = Path(__file__).with_name("dbt_build_log.jsonl")
"""Lines of ``dbt build --log-format json --log-level debug`` on the demo project plus a failing singular
test (``assert_no_plans_lg_fail``) and a warn-severity one (``assert_warns_lg``); two lines of a traceback."""


def records() -> list[LogRecord]:
    return [parse_line(line) for line in FIXTURE.read_bytes().splitlines()]


def lifecycle() -> list[NodeStartedObs | NodeFinishedObs]:
    nodes = NodeLifecycle()
    return [obs for record in records() if (obs := nodes.feed(record)) is not None]


def test_versions_come_from_the_first_lines() -> None:
    first, second = records()[:2]
    assert first.observation == VersionObs(dbt_version="1.11.16")
    assert second.observation == AdapterObs(adapter="duckdb", version="1.11.1")
    assert first.name == "MainReportVersion"
    assert first.level == "info"
    assert first.invocation_id == "86a32521-1d98-4348-b2a0-6d921877e7e2"
    assert first.ts == datetime(2026, 11, 22, 6, 0, 10, 993348, tzinfo=UTC)
    assert first.text == "Running with dbt=1.11.16"


def test_a_seed_finishes_with_its_rows_and_adapter_response() -> None:
    finished = [o for o in lifecycle() if isinstance(o, NodeFinishedObs)]
    seed = next(o for o in finished if o.unique_id == "seed.lockgate_demo.raw_plans")
    assert seed.status == "success"
    assert seed.rows_affected == 4  # dbt-duckdb says 4.0
    assert seed.adapter_response == {"_message": "INSERT 4", "code": "INSERT", "rows_affected": 4.0}
    assert seed.message == "INSERT 4"
    assert seed.started_at == datetime(2026, 11, 22, 6, 0, 14, 974923, tzinfo=UTC)
    assert seed.finished_at == datetime(2026, 11, 22, 6, 0, 15, 296131, tzinfo=UTC)
    assert seed.execution_time > 0.3
    assert seed.query_ids == ()


def test_failing_warning_and_skipped_nodes_each_finish_once_with_dbts_status() -> None:
    finished = {o.unique_id: o for o in lifecycle() if isinstance(o, NodeFinishedObs)}
    failed = finished["test.lockgate_demo.assert_no_plans_lg_fail"]
    assert (failed.status, failed.failures) == ("fail", 4)
    assert failed.message == "Got 4 results, configured to fail if != 0"
    warned = finished["test.lockgate_demo.assert_warns_lg"]
    assert (warned.status, warned.failures) == ("warn", 12)
    skipped = finished["model.lockgate_demo.dim_plans"]
    assert skipped.status == "skipped"
    assert skipped.message == ""
    assert skipped.finished_at is None
    assert skipped.started_at is not None


def test_a_microbatch_model_starts_and_finishes_once_whatever_its_batches() -> None:
    model = "model.lockgate_demo.fct_daily_revenue"
    raw = [r.observation for r in records() if getattr(r.observation, "unique_id", None) == model]
    assert len(raw) == 6  # the node's start, two batches (start + finish), the node's finish
    mine = [o for o in lifecycle() if o.unique_id == model]
    assert [type(o) for o in mine] == [NodeStartedObs, NodeFinishedObs]
    started, finished = mine
    assert isinstance(finished, NodeFinishedObs)
    assert finished.message == "SUCCESS"
    assert finished.started_at == started.started_at
    assert finished.execution_time > 1.0  # the whole node, not one batch


def test_every_node_starts_before_it_finishes_and_nothing_is_left_open() -> None:
    nodes = NodeLifecycle()
    seen: list[tuple[str, str]] = []
    for record in records():
        obs = nodes.feed(record)
        if obs is not None:
            seen.append((type(obs).__name__, obs.unique_id))
    assert nodes.open == ()
    finished = [uid for kind, uid in seen if kind == "NodeFinishedObs"]
    assert len(finished) == len(set(finished)) == 5
    for uid in finished:
        assert seen.index(("NodeStartedObs", uid)) < seen.index(("NodeFinishedObs", uid))


def test_a_traceback_is_plain_text() -> None:
    traceback = next(r for r in records() if r.text.startswith("Traceback"))
    assert traceback == LogRecord(ts=None, level="", name="", text="Traceback (most recent call last):")
    assert display(traceback) == "Traceback (most recent call last):"


def test_display_is_dbts_time_and_text_without_colours() -> None:
    failing = next(r for r in records() if r.name == "LogTestResult")
    assert "\x1b" not in failing.text
    assert display(failing).startswith("06:00:16.09")
    assert display(failing).endswith("[FAIL 4 in 0.05s]")
    assert display(records()[0]) == "06:00:10.993  Running with dbt=1.11.16"


def test_odd_lines_never_raise() -> None:
    for line in (b"", b"{", b"{}", b"[1, 2]", b'{"info": 3}', b'{"info": {}}', b"\xff\xfe not utf-8", b"plain\r\n"):
        record = parse_line(line)
        assert record.name == ""
        assert record.observation is None
    assert parse_line(b"plain\r\n").text == "plain"
    assert parse_line(b"\x1b[31mred\x1b[0m").text == "red"


def test_a_snowflake_style_response_gives_query_ids_and_drops_nested_values() -> None:
    line = {
        "info": {"name": "NodeFinished", "level": "debug", "ts": "2026-01-02T03:04:05.678901Z", "msg": "done"},
        "data": {
            "node_info": {"unique_id": "model.p.m", "node_started_at": "2026-01-02T03:04:00", "node_finished_at": ""},
            "run_result": {
                "status": "success",
                "message": "\x1b[32mSUCCESS 1\x1b[0m",
                "execution_time": 5.0,
                "num_failures": None,
                "adapter_response": {
                    "_message": "SUCCESS 1",
                    "code": "SUCCESS",
                    "rows_affected": -1,
                    "query_id": "01b2-0000-abcd",
                    "extra": {"nested": True},
                },
            },
        },
    }
    obs = parse_line(json.dumps(line).encode()).observation
    assert isinstance(obs, NodeFinishedObs)
    assert obs.query_ids == ("01b2-0000-abcd",)
    assert obs.rows_affected is None  # -1: unknown
    assert "extra" not in obs.adapter_response
    assert obs.message == "SUCCESS 1"
    assert obs.failures is None
    assert obs.started_at == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert obs.finished_at is None


def test_a_finish_without_a_start_still_counts_once() -> None:
    line = json.dumps(
        {
            "info": {"name": "NodeFinished", "ts": "2026-01-02T03:04:05Z"},
            "data": {"node_info": {"unique_id": "model.p.m"}, "run_result": {"status": "error"}},
        }
    ).encode()
    nodes = NodeLifecycle()
    first = nodes.feed(parse_line(line))
    assert isinstance(first, NodeFinishedObs)
    assert first.status == "error"
    assert nodes.feed(parse_line(line)) is None
