"""dbt's ``--log-format json`` output, one line at a time: a ``LogRecord`` for the live log, and the facts
the runner turns into events (node started/finished, dbt and adapter versions).

Each line dbt writes is ``{"info": {name, level, ts, msg, invocation_id...}, "data": {...}}``; the Structs
below name only the fields read, so msgspec skips the rest (SQL text, node configs) without building it.
Anything else on the stream (a Python traceback merged from standard error, a warning printed by a library)
becomes a plain-text record.

What dbt 1.11 logs per node (``--log-level debug``), as observed with dbt-duckdb:

- ``NodeStart`` then ``NodeFinished`` for every node it runs *and* every node it skips because an upstream
  node failed (status ``skipped``, empty message, no timing); a warn-severity test ends ``warn`` with its
  failing-row count in ``num_failures``;
- a microbatch model logs one outer ``NodeStart``, then ``NodeStart``/``NodeFinished`` for every batch, then
  the outer ``NodeFinished`` whose ``node_started_at`` is the outer start. ``parse_line`` is stateless and
  reports each of them; ``NodeLifecycle`` keeps exactly one start and one finish per node.

Timestamps in ``node_info`` carry no offset; dbt writes them in UTC (``info.ts`` ends with ``Z``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

__all__ = [
    "AdapterObs",
    "LogRecord",
    "NodeFinishedObs",
    "NodeLifecycle",
    "NodeStartedObs",
    "Observation",
    "VersionObs",
    "display",
    "parse_line",
]

Scalar = str | int | float | bool | None

_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# -- what is read from a line --------------------------------------------------------------------------------


class _Info(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    level: str = ""
    ts: str = ""
    msg: str = ""
    invocation_id: str | None = None


class _NodeInfo(msgspec.Struct, frozen=True, gc=False):
    unique_id: str = ""
    node_started_at: str = ""
    node_finished_at: str = ""


class _RunResult(msgspec.Struct, frozen=True, gc=False):
    status: str = ""
    message: str | None = None
    execution_time: float = 0.0
    num_failures: int | None = None
    adapter_response: dict[str, Any] = {}


class _Data(msgspec.Struct, frozen=True, gc=False):
    node_info: _NodeInfo | None = None
    run_result: _RunResult | None = None
    version: str | None = None
    adapter_name: str | None = None
    adapter_version: str | None = None


class _Line(msgspec.Struct, frozen=True, gc=False):
    info: _Info
    data: _Data = _Data()


_decoder: Final = msgspec.json.Decoder(_Line)


# -- what a line says --------------------------------------------------------------------------------------


class NodeStartedObs(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    unique_id: str
    started_at: datetime | None = None


class NodeFinishedObs(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One node's result (``NodeFinished``): ``status`` is dbt's own (``success``, ``pass``, ``warn``,
    ``fail``, ``error``, ``skipped``...)."""

    unique_id: str
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    execution_time: float = 0.0
    rows_affected: int | None = None
    failures: int | None = None
    """Failing rows of a test (dbt's ``num_failures``, which is 0 for nodes that are not tests)."""
    adapter_response: dict[str, Scalar] = {}
    """The adapter's response, scalars only (nested values are dropped)."""
    query_ids: tuple[str, ...] = ()
    message: str = ""


class VersionObs(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    dbt_version: str


class AdapterObs(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    adapter: str
    version: str


Observation = NodeStartedObs | NodeFinishedObs | VersionObs | AdapterObs


class LogRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One line of dbt's output. A line that is not a dbt JSON event has ``name`` ``""`` and no ``ts``."""

    ts: datetime | None
    level: str
    name: str
    text: str
    """dbt's ``msg`` (or the raw line), without ANSI colour codes."""
    invocation_id: str | None = None
    observation: Observation | None = None


def parse_line(line: bytes) -> LogRecord:
    """One line (with or without its newline) as a ``LogRecord``; never raises."""
    if not line.startswith(b"{"):
        return _plain(line)
    try:
        parsed = _decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _plain(line)
    info = parsed.info
    if not info.name:
        return _plain(line)
    return LogRecord(
        ts=_timestamp(info.ts),
        level=info.level,
        name=info.name,
        text=_strip(info.msg),
        invocation_id=info.invocation_id,
        observation=_observe(info.name, parsed.data),
    )


def display(record: LogRecord) -> str:
    """One line for people: ``HH:MM:SS.mmm  text`` (dbt's own time, UTC); plain lines as they came."""
    if record.ts is None:
        return record.text
    return f"{record.ts:%H:%M:%S}.{record.ts.microsecond // 1000:03d}  {record.text}"


class NodeLifecycle:
    """Exactly one ``NodeStartedObs`` and one ``NodeFinishedObs`` per node of one dbt invocation, in the order
    dbt logged them: the batches of a microbatch model (a start and a finish inside the node's own) are
    dropped, so are repeats. Feed it every record of one invocation."""

    def __init__(self) -> None:
        self._started: dict[str, datetime | None] = {}
        self._finished: set[str] = set()

    def feed(self, record: LogRecord) -> NodeStartedObs | NodeFinishedObs | None:
        obs = record.observation
        if isinstance(obs, NodeStartedObs):
            if obs.unique_id in self._started or obs.unique_id in self._finished:
                return None  # a batch of a microbatch model, or a repeat
            self._started[obs.unique_id] = obs.started_at
            return obs
        if isinstance(obs, NodeFinishedObs):
            uid = obs.unique_id
            if uid in self._finished:
                return None
            if uid in self._started and obs.started_at != self._started[uid]:
                return None  # a batch finished; the node's own NodeFinished carries the node's start
            self._started.pop(uid, None)
            self._finished.add(uid)
            return obs
        return None

    @property
    def open(self) -> tuple[str, ...]:
        """Nodes started and not finished (what was running when dbt stopped)."""
        return tuple(self._started)


# -- helpers -----------------------------------------------------------------------------------------------


def _plain(line: bytes) -> LogRecord:
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    return LogRecord(ts=None, level="", name="", text=_strip(text))


def _strip(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


def _timestamp(value: str) -> datetime | None:
    """An ISO timestamp; naive ones are UTC (dbt's ``node_info`` times); empty or invalid: None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _observe(name: str, data: _Data) -> Observation | None:
    if name == "NodeStart" and data.node_info is not None and data.node_info.unique_id:
        return NodeStartedObs(unique_id=data.node_info.unique_id, started_at=_timestamp(data.node_info.node_started_at))
    if name == "NodeFinished" and data.node_info is not None and data.node_info.unique_id:
        return _finished(data.node_info, data.run_result or _RunResult())
    if name == "MainReportVersion" and data.version:
        return VersionObs(dbt_version=data.version.lstrip("="))
    if name == "AdapterRegistered" and data.adapter_name:
        return AdapterObs(adapter=data.adapter_name, version=(data.adapter_version or "").lstrip("="))
    return None


def _finished(node: _NodeInfo, result: _RunResult) -> NodeFinishedObs:
    response = {key: value for key, value in result.adapter_response.items() if _is_scalar(value)}
    return NodeFinishedObs(
        unique_id=node.unique_id,
        status=result.status or "unknown",
        started_at=_timestamp(node.node_started_at),
        finished_at=_timestamp(node.node_finished_at),
        execution_time=result.execution_time,
        rows_affected=_count(response.get("rows_affected")),
        failures=result.num_failures,
        adapter_response=response,
        query_ids=_query_ids(result.adapter_response),
        message=_strip(result.message or ""),
    )


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _count(value: object) -> int | None:
    """dbt-duckdb reports ``rows_affected`` as a float (``4.0``); -1 means unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    count = int(value)
    return count if count >= 0 else None


def _query_ids(response: dict[str, Any]) -> tuple[str, ...]:
    """What the adapter says identifies its queries (as ingestion reads run_results.json): Snowflake's
    ``query_id``, BigQuery's ``job_id``; each one id or a list of them."""
    ids: list[str] = []
    for key in ("query_id", "job_id"):
        value = response.get(key)
        if isinstance(value, str) and value:
            ids.append(value)
        elif isinstance(value, list):
            ids += [v for v in value if isinstance(v, str) and v]
    return tuple(ids)
