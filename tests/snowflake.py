"""The Snowflake stand-in for tests: fakesnow 0.12.1's server in a subprocess, with a shim for what dbt and the
QUERY_TAG tests need and stock fakesnow lacks (FEASIBILITY.md §1 and its Appendix A).

The shim, applied in the server process only:
- QUERY_TAG per session: ``alter session set/unset query_tag`` and the login parameter (a profile's
  ``query_tag``); ``show parameters like 'query_tag' [in session]`` answers with it.
- ``SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY``: one row per statement with the session's tag at the time, its
  status and timing (written whether the statement succeeded or failed).
- dbt's qualified ``create or replace temporary view/table`` (DuckDB only allows temporary objects in its
  ``temp`` catalog) and the ambiguous column names of dbt's MERGE ``values (...)``.
- A statement after one that failed inside fakesnow's own transaction: DuckDB's aborted transaction is rolled
  back and the statement retried; otherwise the server answers 500 and the connector retries forever.

The shim patches fakesnow internals, so it is pinned to fakesnow 0.12.1. The server prints one ready line
once the history table exists, and exits when its standard input closes, so it cannot outlive the test
process even if that is killed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import selectors
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Self

from tests.services import missing_service

FAKESNOW_VERSION: Final = "0.12.1"
READY_PREFIX: Final = "lockgate fakesnow ready on "
START_TIMEOUT_S: Final = 30.0
_REPO_ROOT: Final = Path(__file__).resolve().parents[1]

QUERY_HISTORY: Final = "SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY"
_HISTORY_DDL: Final = f"""create table if not exists {QUERY_HISTORY} (
  QUERY_ID varchar, QUERY_TEXT varchar, QUERY_TAG varchar, DATABASE_NAME varchar, SCHEMA_NAME varchar,
  USER_NAME varchar, WAREHOUSE_NAME varchar, EXECUTION_STATUS varchar, START_TIME timestamp,
  END_TIME timestamp, TOTAL_ELAPSED_TIME bigint, ROWS_PRODUCED bigint)"""

_LEADING_COMMENTS: Final = re.compile(r"^\s*(?:/\*.*?\*/\s*)*", re.S)
"""dbt adds a ``/* {"app": "dbt", ...} */`` query comment to every statement (at the end on Snowflake)."""
_SNOWFLAKE_STRING: Final = r"'((?:[^'\\]|\\.|'')*)'"
_TRAILER: Final = r"\s*;?\s*(?:/\*.*?\*/\s*)*;?\s*$"
"""What may follow a statement: dbt appends its query comment on Snowflake."""
_SET_TAG: Final = re.compile(rf"alter\s+session\s+set\s+query_tag\s*=\s*{_SNOWFLAKE_STRING}{_TRAILER}", re.I | re.S)
_UNSET_TAG: Final = re.compile(rf"alter\s+session\s+unset\s+query_tag{_TRAILER}", re.I | re.S)
_SHOW_TAG: Final = re.compile(
    rf"show\s+parameters\s+like\s+'query_tag'(?:\s+(?:in|for)\s+session)?{_TRAILER}", re.I | re.S
)
_TEMP_DDL: Final = re.compile(
    r"\bcreate\s+or\s+replace\s+(?:local\s+|global\s+)?temporary\s+(view|table)\s+([\w.\"$]+)", re.I
)
_MERGE_VALUES: Final = re.compile(r"(then\s+insert\s*\([^)]*\)\s*values\s*\()((?:\s*\"[^\"]+\"\s*,?)+)(\))", re.I)
_BACKSLASH_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


def snowflake_string_value(body: str) -> str:
    """The value of a Snowflake single-quoted literal's body: ``''`` is a quote, backslash starts an escape."""
    return re.sub(
        r"\\(.)|''",
        lambda m: "'" if m.group(1) is None else _BACKSLASH_ESCAPES.get(m.group(1), m.group(1)),
        body,
        flags=re.S,
    )


class FakeSnowflake:
    """A running stand-in: connect with ``connection_kwargs()`` (the real connector) or a dbt profile."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int, log: Path) -> None:
        self._process = process
        self.host = host
        self.port = port
        self.log = log
        """The server's standard error: fakesnow's and uvicorn's log lines."""

    def connection_kwargs(self, **overrides: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "account": "fakesnow",
            "user": "fake",
            "password": "fake",
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            "network_timeout": 10,
        }
        return kwargs | overrides

    def stop(self) -> None:
        """Close its standard input (it exits on that), then kill it if it has not gone within 5 s."""
        _end(self._process)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_fakesnow(tmp_path: Path) -> FakeSnowflake:
    """Start the stand-in on a free loopback port; its log goes to ``tmp_path/fakesnow.log``."""
    try:
        from importlib.metadata import version  # noqa: PLC0415

        installed = version("fakesnow")
    except ImportError:  # pragma: no cover
        installed = ""
    if installed != FAKESNOW_VERSION:
        missing_service(f"fakesnow {FAKESNOW_VERSION} (found {installed or 'none'})", "uv sync")
    log = tmp_path / "fakesnow.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.snowflake"],
            cwd=_REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            # Without the test process's allocation tracing (PYTHONTRACEMALLOC makes the server's start crawl).
            env={**{k: v for k, v in os.environ.items() if k != "PYTHONTRACEMALLOC"}, "PYTHONUNBUFFERED": "1"},
        )
    try:
        host, port = _await_ready(process, log)
    except BaseException:
        _end(process, grace_s=0)
        raise
    return FakeSnowflake(process, host, port, log)


@contextlib.contextmanager
def fakesnow_server(tmp_path: Path) -> Iterator[FakeSnowflake]:
    server = start_fakesnow(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def _end(process: subprocess.Popen[bytes], grace_s: float = 5) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a broken pipe when it has already gone
                pipe.close()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _await_ready(process: subprocess.Popen[bytes], log: Path) -> tuple[str, int]:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = process.stdout.readline().decode()
            if line.startswith(READY_PREFIX):
                host, _, port = line.removeprefix(READY_PREFIX).strip().rpartition(":")
                return host, int(port)
            if not line:  # it exited
                break
    tail = log.read_text(errors="replace")[-3000:]
    msg = f"the fakesnow stand-in did not get ready (exit status {process.poll()}); its log ends:\n{tail}"
    raise RuntimeError(msg)


# --- the server process ---------------------------------------------------------------------------------


def _install_shim() -> None:
    import duckdb  # noqa: PLC0415 - only in the server process
    from fakesnow.cursor import FakeSnowflakeCursor  # noqa: PLC0415

    original_execute: Callable[..., FakeSnowflakeCursor] = FakeSnowflakeCursor.execute

    def execute(
        self: FakeSnowflakeCursor, command: str, params: Any = None, *args: Any, **kwargs: Any
    ) -> FakeSnowflakeCursor:
        conn: Any = self._conn  # fakesnow's connection; the tag attribute is the shim's
        tag: str = getattr(conn, "lockgate_query_tag", "")
        new_tag = _tag_change(command)
        if new_tag is not None:
            run: Callable[[], FakeSnowflakeCursor] = lambda: original_execute(self, _STATUS_ONLY, None)  # noqa: E731
        elif _SHOW_TAG.match(_LEADING_COMMENTS.sub("", command, count=1)):
            run = lambda: original_execute(self, _show_tag_sql(tag), None)  # noqa: E731
        else:
            command = _fixed_for_duckdb(self, original_execute, command)

            def run() -> FakeSnowflakeCursor:
                try:
                    return original_execute(self, command, params, *args, **kwargs)
                except duckdb.TransactionException as error:
                    # An earlier failure inside fakesnow's own BEGIN..COMMIT left the transaction aborted.
                    if "aborted" not in str(error):
                        raise
                    conn._duck_conn.execute("ROLLBACK")
                    return original_execute(self, command, params, *args, **kwargs)

        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        clock = time.perf_counter()
        status = "FAIL"
        try:
            result = run()
            status = "SUCCESS"
        finally:
            # Recorded with the tag in force when the statement ran (a tag change is under the previous tag).
            elapsed = dt.timedelta(seconds=time.perf_counter() - clock)
            rows = self.rowcount if status == "SUCCESS" and self.rowcount is not None else 0
            row = [self.sfqid or str(uuid.uuid4()), command, tag, conn.database, conn.schema, "FAKE", "FAKE_WH"]
            row += [status, started, started + elapsed, elapsed // dt.timedelta(milliseconds=1), rows]
            try:
                conn._duck_conn.cursor().execute(
                    f"insert into {QUERY_HISTORY} values ({','.join('?' * len(row))})", row
                )
            except duckdb.Error as error:  # never fail the statement itself
                print("query_history insert failed:", error, file=sys.stderr)  # noqa: T201
        if new_tag is not None:
            conn.lockgate_query_tag = new_tag
        return result

    FakeSnowflakeCursor.execute = execute  # type: ignore[method-assign]


_STATUS_ONLY: Final = "select 'Statement executed successfully.' as \"status\""


def _tag_change(command: str) -> str | None:
    """The session's new tag if ``command`` sets ("") or unsets it, else None."""
    bare = _LEADING_COMMENTS.sub("", command, count=1)
    if match := _SET_TAG.match(bare):
        return snowflake_string_value(match.group(1))
    if _UNSET_TAG.match(bare):
        return ""
    return None


def _show_tag_sql(tag: str) -> str:
    """What ``show parameters like 'query_tag' in session`` answers, as a query fakesnow runs."""
    level = "'SESSION'" if tag else "''"
    value = "'" + tag.replace("\\", "\\\\").replace("'", "''") + "'"  # fakesnow reads it as Snowflake SQL
    return (
        f'select \'QUERY_TAG\' as "key", {value} as "value", \'\' as "default", {level} as "level",'
        " 'Query tag' as \"description\", 'STRING' as \"type\""
    )


def _fixed_for_duckdb(cursor: Any, original_execute: Callable[..., Any], command: str) -> str:
    """dbt's Snowflake SQL that DuckDB (through fakesnow) rejects, rewritten to what it accepts."""
    if match := _TEMP_DDL.search(command):
        # DuckDB allows TEMPORARY objects only in its temp catalog; the tmp relation may also be a view in one
        # run and a table in the next.
        for kind in ("view", "table"):
            with contextlib.suppress(Exception):
                original_execute(cursor, f"drop {kind} if exists {match.group(2)}", None)
        command = _TEMP_DDL.sub(r"create or replace \1 \2", command)
    if "DBT_INTERNAL_SOURCE" in command:
        # fakesnow's MERGE translation makes dbt's `values ("ID", ...)` ambiguous: qualify with the source alias.
        command = _MERGE_VALUES.sub(
            lambda m: (
                m.group(1)
                + ", ".join(f"DBT_INTERNAL_SOURCE.{c.strip()}" for c in m.group(2).split(",") if c.strip())
                + m.group(3)
            ),
            command,
        )
    return command


def _honour_login_query_tag() -> None:
    """The connector sends a profile's ``query_tag`` as a login session parameter; stock fakesnow drops it."""
    import gzip  # noqa: PLC0415
    import json  # noqa: PLC0415

    import fakesnow.server as fakesnow_app  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import Response  # noqa: PLC0415
    from starlette.routing import Route, request_response  # noqa: PLC0415

    route = next(r for r in fakesnow_app.app.routes if isinstance(r, Route) and r.path == "/session/v1/login-request")
    original_login = route.endpoint

    async def login(request: Request) -> Response:
        body = await request.body()  # starlette caches it for the original endpoint
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        response: Response = await original_login(request)
        tag = json.loads(body)["data"]["SESSION_PARAMETERS"].get("QUERY_TAG", "")
        if response.status_code == 200:
            token = json.loads(bytes(response.body))["data"]["token"]
            fakesnow_app.sessions[token].lockgate_query_tag = tag  # type: ignore[attr-defined]
        return response

    route.app = request_response(login)


def _serve() -> None:
    # The function first: importing the submodule fakesnow.server (the shim does) shadows it on the package.
    import snowflake.connector  # noqa: PLC0415
    from fakesnow import server as fakesnow_server_thread  # noqa: PLC0415

    _install_shim()
    _honour_login_query_tag()
    with fakesnow_server_thread() as kwargs:
        with snowflake.connector.connect(**kwargs) as conn:
            for sql in (
                "create database if not exists SNOWFLAKE",
                "create schema if not exists SNOWFLAKE.ACCOUNT_USAGE",
                _HISTORY_DDL,
            ):
                conn.cursor().execute(sql)
        print(f"{READY_PREFIX}{kwargs['host']}:{kwargs['port']}", flush=True)  # noqa: T201
        sys.stdin.buffer.read()  # until the test process closes it or dies


if __name__ == "__main__":
    _serve()
