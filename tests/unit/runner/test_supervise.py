"""``supervise`` against a scripted stand-in for a process (timings in tens of milliseconds), and the runner's
metrics. The same supervision runs real processes, containers and dbt in tests/integration/test_runner_*.py."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator

import pytest

from services.runner import metrics
from services.runner.ports import Exit
from services.runner.supervise import supervise
from tests.services import free_port, port_open


class ScriptedProcess:
    """Writes ``output`` at once, then runs ``runs_for`` seconds (None: until signalled) and exits 0. On SIGINT
    it writes ``canceled`` and exits 130 shortly after, unless it ignores SIGINT; SIGKILL ends it at once.
    ``holds_output``: its output stays open after the exit (a grandchild holding the pipe)."""

    def __init__(
        self,
        output: list[bytes],
        *,
        runs_for: float | None = 0.0,
        ignores_sigint: bool = False,
        holds_output: bool = False,
    ) -> None:
        self.signals: list[str] = []
        self._ignores_sigint = ignores_sigint
        self._holds_output = holds_output
        self._output: asyncio.Queue[bytes | None] = asyncio.Queue()
        for line in output:
            self._output.put_nowait(line)
        self._exit: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        if runs_for is not None:
            asyncio.get_running_loop().call_later(runs_for, self._end, 0, [b"last words"])

    def _end(self, returncode: int, last: list[bytes]) -> None:
        if self._exit.done():
            return
        for line in last:
            self._output.put_nowait(line)
        if not self._holds_output:
            self._output.put_nowait(None)
        self._exit.set_result(Exit(returncode=returncode))

    async def lines(self) -> AsyncIterator[bytes]:
        while (line := await self._output.get()) is not None:
            yield line

    async def interrupt(self) -> None:
        self.signals.append("SIGINT")
        if not self._ignores_sigint:
            asyncio.get_running_loop().call_later(0.02, self._end, 130, [b"canceled"])

    async def kill(self) -> None:
        self.signals.append("SIGKILL")
        self._end(-9, [])

    async def wait(self) -> Exit:
        return await asyncio.shield(self._exit)


class Collected:
    def __init__(self, *, slow: bool = False) -> None:
        self.lines: list[bytes] = []
        self._slow = slow

    async def __call__(self, line: bytes) -> None:
        if self._slow:
            await asyncio.sleep(0.001)
        self.lines.append(line)


async def test_every_line_reaches_on_line_in_order_even_after_the_exit() -> None:
    output = [f"line {i}".encode() for i in range(300)]
    process = ScriptedProcess(output)
    collected = Collected(slow=True)  # the process has long exited while the lines are still being handed on
    done = await supervise(process, on_line=collected, cancel=asyncio.Event(), timeout=10, grace=1)
    assert collected.lines == [*output, b"last words"]
    assert done.lines == 301
    assert done.exit == Exit(returncode=0)
    assert (done.canceled, done.timed_out, done.killed) == (False, False, False)
    assert process.signals == []


async def test_without_on_line_the_output_is_still_consumed() -> None:
    process = ScriptedProcess([b"a", b"b"])
    done = await supervise(process, on_line=None, cancel=asyncio.Event(), timeout=10, grace=1)
    assert done.lines == 3
    assert done.exit.returncode == 0


async def test_cancel_interrupts_and_the_process_ends_within_the_grace_period() -> None:
    process = ScriptedProcess([b"started"], runs_for=None)
    cancel = asyncio.Event()
    collected = Collected()
    asyncio.get_running_loop().call_later(0.05, cancel.set)
    done = await supervise(process, on_line=collected, cancel=cancel, timeout=10, grace=5)
    assert done.canceled
    assert not done.killed
    assert not done.timed_out
    assert done.exit.returncode == 130
    assert process.signals == ["SIGINT"]
    assert collected.lines == [b"started", b"canceled"]


async def test_a_process_that_ignores_sigint_is_killed_after_the_grace_period() -> None:
    process = ScriptedProcess([], runs_for=None, ignores_sigint=True)
    cancel = asyncio.Event()
    cancel.set()
    loop = asyncio.get_running_loop()
    started = loop.time()
    done = await supervise(process, on_line=None, cancel=cancel, timeout=10, grace=0.2)
    assert 0.2 <= loop.time() - started < 1.0
    assert done.canceled
    assert done.killed
    assert done.exit.returncode == -9
    assert process.signals == ["SIGINT", "SIGKILL"]


async def test_the_timeout_interrupts_like_a_cancel() -> None:
    process = ScriptedProcess([], runs_for=None)
    done = await supervise(process, on_line=None, cancel=asyncio.Event(), timeout=0.1, grace=5)
    assert done.timed_out
    assert not done.canceled
    assert not done.killed
    assert done.exit.returncode == 130


async def test_a_process_that_ends_before_the_timeout_is_left_alone() -> None:
    process = ScriptedProcess([], runs_for=0.05)
    done = await supervise(process, on_line=None, cancel=asyncio.Event(), timeout=5, grace=5)
    assert not done.timed_out
    assert process.signals == []


async def test_a_failing_on_line_kills_the_process_and_propagates() -> None:
    process = ScriptedProcess([b"fine", b"boom"], runs_for=None)

    async def fenced(line: bytes) -> None:
        if line == b"boom":
            raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError, match="lease lost"):
        await supervise(process, on_line=fenced, cancel=asyncio.Event(), timeout=10, grace=1)
    assert process.signals == ["SIGKILL"]
    assert (await process.wait()).returncode == -9


async def test_cancelling_the_supervisor_kills_and_reaps_the_process() -> None:
    process = ScriptedProcess([], runs_for=None)
    task = asyncio.create_task(supervise(process, on_line=None, cancel=asyncio.Event(), timeout=10, grace=1))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert process.signals == ["SIGKILL"]


async def test_output_held_open_after_the_exit_is_abandoned_after_the_drain_time() -> None:
    process = ScriptedProcess([b"a"], runs_for=0.0, holds_output=True)
    collected = Collected()
    done = await supervise(process, on_line=collected, cancel=asyncio.Event(), timeout=10, grace=1, drain_s=0.1)
    assert done.exit.returncode == 0
    assert collected.lines == [b"a", b"last words"]


# -- metrics ---------------------------------------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_workers_calls_show_in_the_exposition_text() -> None:
    active = sample("lockgate_runs_active")
    waits = sample("lockgate_run_queue_wait_seconds_count")
    oom = sample("lockgate_runs_oom_killed_total")
    failed = sample("lockgate_runs_finished_total", status="failed", reason="out_of_memory")
    models = sample("lockgate_node_duration_seconds_count", resource_type="model", status="success")

    metrics.run_started(queue_wait_s=2.5)
    assert sample("lockgate_runs_active") == active + 1
    metrics.node_finished("model", "success", 1.5)
    metrics.run_finished("failed", "out_of_memory", oom=True)
    assert sample("lockgate_runs_active") == active + 1
    metrics.run_ended()

    assert sample("lockgate_runs_active") == active
    assert sample("lockgate_run_queue_wait_seconds_count") == waits + 1
    assert sample("lockgate_runs_oom_killed_total") == oom + 1
    assert sample("lockgate_runs_finished_total", status="failed", reason="out_of_memory") == failed + 1
    assert sample("lockgate_node_duration_seconds_count", resource_type="model", status="success") == models + 1
    text, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    exposition = text.decode()
    assert f'lockgate_runs_finished_total{{reason="out_of_memory",status="failed"}} {failed + 1}' in exposition
    assert f"lockgate_runs_oom_killed_total {oom + 1}" in exposition
    assert 'lockgate_node_duration_seconds_bucket{le="2.5",resource_type="model",status="success"}' in exposition
    assert "lockgate_run_queue_wait_seconds_sum" in exposition
    assert "# TYPE lockgate_runs_active gauge" in exposition


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback http URL of the test's own
        body: bytes = response.read()
        return body


async def test_serve_metrics_answers_until_stopped() -> None:
    port = free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(metrics.serve_metrics("127.0.0.1", port, stop))
    for _ in range(100):
        if port_open("127.0.0.1", port):
            break
        await asyncio.sleep(0.02)
    body = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
    assert b"# TYPE lockgate_runs_finished_total counter" in body
    stop.set()
    await asyncio.wait_for(server, 5)
    assert not port_open("127.0.0.1", port)
