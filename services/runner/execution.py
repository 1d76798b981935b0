"""One run, executed: workspace, dbt invocations under supervision, live events and logs, fidelity, artifacts.

``execute_run`` is called by the worker once it holds the run's lease and has appended ``RunStarted``. It
owns everything until ``RunFinished``: the temporary workspace (removed at the end, whatever happens), the
dbt processes (interrupted on cancel, timeout or a lost lease), the journal of node events, the live log,
the stored artifacts and the ingestion of the run's results as run history (issue 3).

Secrets: the redactor knows every secret value the profile uses; every line, message and error leaves this
module through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from contracts.events.runs import (
    FailureReason,
    FinalStatus,
    NodeFinished,
    NodeStarted,
    PlanDeviation,
    RunArtifact,
    RunFinished,
)
from contracts.graph import LogicalGraph
from contracts.plan import ExecutionPlan
from services.runner import dbt_session, dbtlog, fidelity, metrics
from services.runner.invocations import Invocation
from services.runner.journal import Journal, RunLostError
from services.runner.logs import LiveLog, store_log
from services.runner.ports import Exit, Limits, WorkerRuntime
from services.runner.redaction import Redactor
from services.runner.supervise import Supervised, supervise
from services.runner.workspace import Workspace
from services.shared.objectstore.port import TenantObjectStore

log = logging.getLogger(__name__)

ARTIFACT_KIND = "run_artifact"
_SESSION_MARK = b'{"' + dbt_session.MARKER.encode() + b'"'
MAX_MESSAGE = 2000

Ingest = Callable[[Mapping[str, Path]], Awaitable[None]]
"""Ingest one set of artifacts (``manifest``, ``run_results``) of this run as run history."""


@dataclass
class RunContext:
    """Everything one execution needs, prepared by the worker."""

    tenant_id: str
    run_id: uuid.UUID
    attempt: int
    plan: ExecutionPlan
    graph: LogicalGraph
    node_uuids: Mapping[str, uuid.UUID]
    journal: Journal
    live_log: LiveLog
    objects: TenantObjectStore
    runtime: WorkerRuntime
    workspace: Workspace
    invocations: list[Invocation]
    redactor: Redactor
    limits: Limits
    writable: tuple[Path, ...]
    timeout: float
    grace: float
    ingest: Ingest
    lease_lost: asyncio.Event
    session: bool = False
    """Run every invocation in one Python process (``dbt_session``): the local runtime, whose Python has dbt."""


@dataclass
class _Progress:
    statuses: dict[str, str] = field(default_factory=dict)
    exits: list[Exit] = field(default_factory=list)
    ran: list[Invocation] = field(default_factory=list)
    canceled: bool = False
    timed_out: bool = False
    dbt_version: str = ""
    lines: list[str] = field(default_factory=list)
    """The whole (redacted) log, stored compressed at the end."""


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class _LineHandler:
    """Turns dbt's JSON log lines into live log lines and node events, in order."""

    def __init__(self, run: RunContext, progress: _Progress) -> None:
        self._run = run
        self._progress = progress
        self._nodes = dbtlog.NodeLifecycle()  # one start and one finish per node (microbatch batches dropped)
        self.ended: list[int] = []
        """Exit statuses of the session's invocations that ended, in order (see ``dbt_session``)."""

    async def __call__(self, raw: bytes) -> None:
        run = self._run
        if raw.startswith(_SESSION_MARK):
            self.ended.append(int(json.loads(raw)[dbt_session.MARKER]["exit"]))
            self._nodes = dbtlog.NodeLifecycle()  # the next invocation's nodes
            return
        record = dbtlog.parse_line(raw)
        # One dbt event may span lines (its SQL): the log is kept in physical lines, so that a line number means
        # the same thing live, over SSE, and in the stored file.
        for text in run.redactor.redact(dbtlog.display(record)).splitlines() or [""]:
            self._progress.lines.append(text)
            run.live_log.add(text)
        observation = record.observation
        if isinstance(observation, dbtlog.VersionObs):
            self._progress.dbt_version = observation.dbt_version
            return
        observation = self._nodes.feed(record)
        if isinstance(observation, dbtlog.NodeStartedObs):
            run.journal.buffer(
                NodeStarted(
                    run_id=run.run_id,
                    attempt=run.attempt,
                    unique_id=observation.unique_id,
                    node_uuid=run.node_uuids.get(observation.unique_id),
                    started_at=observation.started_at or datetime.now(UTC),
                )
            )
        elif isinstance(observation, dbtlog.NodeFinishedObs):
            self._progress.statuses[observation.unique_id] = observation.status
            run.journal.buffer(
                NodeFinished(
                    run_id=run.run_id,
                    attempt=run.attempt,
                    unique_id=observation.unique_id,
                    node_uuid=run.node_uuids.get(observation.unique_id),
                    status=observation.status,
                    started_at=observation.started_at,
                    finished_at=observation.finished_at,
                    execution_time=observation.execution_time,
                    rows_affected=observation.rows_affected,
                    failures=observation.failures,
                    query_ids=tuple(observation.query_ids),
                    adapter_response={
                        key: run.redactor.redact(value) if isinstance(value, str) else value
                        for key, value in observation.adapter_response.items()
                    },
                    message=_short(run.redactor.redact(observation.message or "")),
                )
            )
            node = run.graph.nodes.get(observation.unique_id)
            metrics.node_finished(
                node.resource_type if node is not None else "unknown", observation.status, observation.execution_time
            )


async def _invoke(run: RunContext, invocation: Invocation, progress: _Progress, deadline: float) -> Exit:
    """One invocation as its own ``dbt`` process (container runtimes: the image has dbt, not Lockgate)."""
    dbt_session.reuse_parse(progress.ran[-1].target_path if progress.ran else None, invocation.target_path)
    dbt = shutil.which("dbt", path=run.workspace.env.get("PATH")) or "dbt"
    outcome = await _supervised(run, [dbt, *invocation.argv], _LineHandler(run, progress), progress, deadline)
    return outcome.exit


async def _session(run: RunContext, progress: _Progress, deadline: float) -> None:
    """Every invocation in one Python process (``dbt_session``): dbt is imported once, not once per wave."""
    spec = run.workspace.root / "session.json"
    spec.write_text(
        json.dumps(
            {
                "invocations": [list(inv.argv) for inv in run.invocations],
                "target_paths": [str(inv.target_path) for inv in run.invocations],
            }
        ),
        encoding="utf-8",
    )
    handler = _LineHandler(run, progress)
    # -I: isolated mode, and above all no script directory on sys.path: services/runner/secrets.py would shadow
    # the standard library's `secrets` (which dbt-snowflake's connector imports).
    argv = [sys.executable, "-I", dbt_session.__file__, str(spec)]
    outcome = await _supervised(run, argv, handler, progress, deadline)
    for invocation, code in zip(run.invocations, handler.ended, strict=False):
        progress.ran.append(invocation)
        progress.exits.append(Exit(returncode=code))
    ended_all = len(handler.ended) == len(run.invocations)
    if outcome.exit.returncode != 0 and not (handler.ended and handler.ended[-1] != 0):
        # The process ended inside an invocation (killed: memory limit, cancel, timeout; or crashed): that
        # invocation ran, partly, and ended as the process did.
        if not ended_all:
            progress.ran.append(run.invocations[len(handler.ended)])
        progress.exits.append(outcome.exit)
    elif outcome.exit.oom_killed:
        progress.exits.append(outcome.exit)


async def _supervised(
    run: RunContext, argv: list[str], handler: _LineHandler, progress: _Progress, deadline: float
) -> Supervised:
    stop = asyncio.Event()

    async def relay_stop() -> None:
        waits = [asyncio.create_task(run.journal.cancel.wait()), asyncio.create_task(run.lease_lost.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        stop.set()

    process = await run.runtime.start(
        argv,
        cwd=run.workspace.project_dir,
        env=run.workspace.env,
        limits=run.limits,
        writable=run.writable,
    )
    watcher = asyncio.create_task(relay_stop())
    try:
        outcome = await supervise(
            process,
            on_line=handler,
            cancel=stop,
            timeout=max(0.0, deadline - time.monotonic()),
            grace=run.grace,
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    progress.canceled |= outcome.canceled and run.journal.cancel.is_set()
    progress.timed_out |= outcome.timed_out
    return outcome


async def _watch(run: RunContext, poll: float) -> None:
    """Read the stream now and then: a cancel request must reach dbt even when no node event is written."""
    while True:
        await asyncio.sleep(poll)
        try:
            await run.journal.poll()
        except RunLostError:
            run.lease_lost.set()
            return
        except Exception:
            log.exception("runner: reading run %s for cancel requests failed", run.run_id)


def _not_run(run: RunContext, progress: _Progress) -> None:
    """Items of invocations that never started (an earlier one failed, or the run was stopped) end ``skipped``
    in the record, with the runner's reason: dbt never saw them, so it reports nothing about them."""
    if progress.canceled or progress.timed_out or run.lease_lost.is_set():
        why = "not run: the run was stopped before this node's invocation"
    else:
        why = "not run: an earlier invocation of this run failed"
    ran = len(progress.ran)
    for invocation in run.invocations[ran:]:
        for unique_id in sorted(invocation.unique_ids):
            progress.statuses.setdefault(unique_id, "skipped")
            run.journal.buffer(
                NodeFinished(
                    run_id=run.run_id,
                    attempt=run.attempt,
                    unique_id=unique_id,
                    node_uuid=run.node_uuids.get(unique_id),
                    status="skipped",
                    message=why,
                )
            )


async def execute_run(run: RunContext, *, cancel_poll: float = 0.5) -> RunFinished | None:
    """Execute the run's invocations and record how it ended. None: the run was lost (someone else ends it)."""
    progress = _Progress()
    deadline = time.monotonic() + run.timeout
    run.journal.start_flushing()
    watcher = asyncio.create_task(_watch(run, cancel_poll))
    try:
        if run.session and run.invocations:
            await _session(run, progress, deadline)
        for invocation in [] if run.session else run.invocations:
            if run.journal.cancel.is_set() or run.lease_lost.is_set() or progress.timed_out:
                break
            exit_ = await _invoke(run, invocation, progress, deadline)
            progress.exits.append(exit_)
            progress.ran.append(invocation)
            if exit_.returncode != 0:
                break  # later waves depend on this one; what they hold is reported as not run
        _not_run(run, progress)
        await run.journal.stop_flushing()
    except RunLostError:
        run.lease_lost.set()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if run.lease_lost.is_set() or run.journal.lost.is_set():
        await run.live_log.close()
        return None
    return await _finish(run, progress)


def _run_results(invocations: list[Invocation]) -> list[Path]:
    return [path for inv in invocations if (path := inv.target_path / "run_results.json").is_file()]


def _judge(run: RunContext, progress: _Progress) -> tuple[FinalStatus, FailureReason, str, PlanDeviation | None]:
    executed = fidelity.executed_from_run_results(_run_results(progress.ran))
    statuses = {**progress.statuses, **executed}
    oom = any(exit_.oom_killed for exit_ in progress.exits)
    if progress.canceled:
        actor, reason = run.journal.canceled_by
        return "canceled", "canceled", f"canceled by {actor}" + (f": {reason}" if reason else ""), None
    if oom:
        limit = run.limits.memory_bytes
        size = f" of {limit // (1024 * 1024)} MiB" if limit else ""
        return "failed", "out_of_memory", f"dbt was killed: it went over the run's memory limit{size}", None
    if progress.timed_out:
        return "failed", "timeout", f"dbt did not finish within {run.timeout:g} s and was stopped", None
    ran = frozenset().union(*(inv.unique_ids for inv in progress.ran)) if progress.ran else frozenset()
    deviation = fidelity.compare(run.plan, executed)
    deviation = PlanDeviation(
        unplanned=deviation.unplanned, missing=tuple(uid for uid in deviation.missing if uid in ran)
    )
    if not run.invocations:
        return "success", "", "nothing to run: the plan skips every selected node (see its reasons)", None
    not_run = len(run.invocations) - len(progress.ran)
    exit_code = next((exit_.returncode for exit_ in progress.exits if exit_.returncode != 0), 0)
    status, reason, message = fidelity.outcome(statuses, exit_code=exit_code, deviation=deviation)
    if not_run:
        message = f"{message} ({not_run} later invocation(s) not run)"
    return status, reason, message, deviation if (deviation.unplanned or deviation.missing) else None


async def _store(run: RunContext, name: str, path: Path) -> RunArtifact:
    stored = await run.objects.put_file(ARTIFACT_KIND, path, content_type="application/json")
    return RunArtifact(name=name, key=stored.key, size=stored.size, sha256=stored.sha256)


async def _artifacts(run: RunContext, progress: _Progress) -> list[RunArtifact]:
    artifacts: list[RunArtifact] = []
    several = len(progress.ran) > 1
    for index, invocation in enumerate(progress.ran, start=1):
        for name in ("run_results.json", "manifest.json"):
            path = invocation.target_path / name
            if path.is_file():
                stored_name = f"{index}-{name}" if several else name
                artifacts.append(await _store(run, stored_name, path))
    return artifacts


async def _ingest(run: RunContext, progress: _Progress) -> str:
    """Record the run's results as run history of the project's graph; a failure here never changes how the
    run ended. Only ``run_results.json`` is ingested: the graph is what the project's ingestions say it is, and
    the manifest of a build that selected part of the project is not the project (dbt fills in a test's macro
    dependencies only when it compiles it), so ingesting it would make graph versions out of nothing. The
    run's manifests are kept with its artifacts."""
    for invocation in progress.ran:
        results = invocation.target_path / "run_results.json"
        if not results.is_file():
            continue
        try:
            await run.ingest({"run_results": results})
        except Exception as exc:
            log.exception("runner: ingesting the results of run %s failed", run.run_id)
            return run.redactor.redact(f"; its results could not be ingested as run history: {exc}")
    return ""


async def _finish(run: RunContext, progress: _Progress) -> RunFinished:
    status, reason, message, deviation = _judge(run, progress)
    artifacts = await _artifacts(run, progress)
    message += await _ingest(run, progress)
    await run.live_log.close()
    artifacts.append(await store_log(run.objects, run.run_id, progress.lines))
    finished = RunFinished(
        run_id=run.run_id,
        attempt=run.attempt,
        status=status,
        reason=reason,
        message=_short(run.redactor.redact(message)),
        deviation=deviation,
        artifacts=tuple(artifacts),
        node_counts=dict(sorted(Counter(progress.statuses.values()).items())),
        log_lines=run.live_log.lines,
        finished_at=datetime.now(UTC),
    )
    await run.journal.append([finished])
    metrics.run_finished(status, reason, oom=reason == "out_of_memory")
    return finished
