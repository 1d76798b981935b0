"""Supervise one dbt process: hand on its output line by line, stop it on cancel or timeout, say how it ended.

Stopping is gentle first: SIGINT, on which dbt cancels its warehouse queries and exits, then SIGKILL if it is
still running ``grace`` seconds later. Every line the process wrote is handed to ``on_line`` (in order, one at a
time, so a slow consumer slows the reading rather than losing lines) before ``supervise`` returns, including
the lines written just before the end.

If ``on_line`` raises (e.g. the runner lost its lease and may not append any more) or the caller is cancelled,
the process is killed and waited for (so its cgroups or container are released) before the error propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

import msgspec

from services.runner.ports import Execution, Exit

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S: Final = 10.0
"""How long the remaining output may take to arrive once the process has ended."""

LineHandler = Callable[[bytes], Awaitable[None]]


class Supervised(msgspec.Struct, frozen=True, kw_only=True):
    """How a supervised process ended."""

    exit: Exit
    canceled: bool = False
    """``cancel`` was set before the process ended on its own."""
    timed_out: bool = False
    """The wall-clock ``timeout`` passed before the process ended on its own."""
    killed: bool = False
    """It was still running ``grace`` seconds after SIGINT and got SIGKILL."""
    lines: int = 0
    """Lines handed to ``on_line``."""


async def supervise(
    execution: Execution,
    *,
    on_line: LineHandler | None,
    cancel: asyncio.Event,
    timeout: float,  # noqa: ASYNC109 - a deadline for the process (then SIGINT), not for this coroutine
    grace: float,
    drain_s: float = DRAIN_TIMEOUT_S,
) -> Supervised:
    """Run ``execution`` to its end; see the module doc. ``timeout`` (seconds) counts from this call."""
    counter = _LineCounter(on_line)
    pump = asyncio.create_task(counter.consume(execution))
    ended = asyncio.create_task(execution.wait())
    try:
        why = await _first_event(ended, pump, cancel, timeout)
        killed = False
        if why != "ended":
            log.info("stopping the process (%s): SIGINT, SIGKILL after %.1f s", why, grace)
            await execution.interrupt()
            done, _ = await asyncio.wait({ended}, timeout=grace)
            if not done:
                killed = True
                await execution.kill()
        exit_ = await ended
        await _drain(pump, drain_s)
    except BaseException:
        await _abandon(execution, ended, pump, grace)
        raise
    return Supervised(
        exit=exit_,
        canceled=why == "canceled",
        timed_out=why == "timed_out",
        killed=killed,
        lines=counter.count,
    )


class _LineCounter:
    def __init__(self, on_line: LineHandler | None) -> None:
        self._on_line = on_line
        self.count = 0

    async def consume(self, execution: Execution) -> None:
        async for line in execution.lines():
            if self._on_line is not None:
                await self._on_line(line)
            self.count += 1


async def _first_event(
    ended: asyncio.Task[Exit], pump: asyncio.Task[None], cancel: asyncio.Event, deadline_s: float
) -> Literal["ended", "canceled", "timed_out"]:
    """What happens first: the end, a cancel or the timeout. Raises what ``on_line`` raised meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    canceling = asyncio.create_task(cancel.wait())
    watched: set[asyncio.Future[Any]] = {ended, canceling, pump}
    try:
        while True:
            done, _ = await asyncio.wait(
                watched, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
            )
            if ended in done:
                return "ended"
            if canceling in done:
                return "canceled"
            if pump in done:
                pump.result()  # the output closed before the exit: keep waiting for the exit alone
                watched.discard(pump)
                continue
            return "timed_out"
    finally:
        canceling.cancel()


async def _drain(pump: asyncio.Task[None], drain_s: float) -> None:
    """Let the last lines through; a pipe still held open after the end is abandoned after ``drain_s`` s."""
    done, _ = await asyncio.wait({pump}, timeout=drain_s)
    if not done:
        log.warning("output still open %.1f s after the process ended; the rest is dropped", drain_s)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        return
    pump.result()


async def _abandon(execution: Execution, ended: asyncio.Task[Exit], pump: asyncio.Task[None], grace_s: float) -> None:
    """Leave nothing running behind an error: kill, wait for the release, stop reading."""
    pump.cancel()
    try:
        await execution.kill()
        await asyncio.wait({ended}, timeout=grace_s + DRAIN_TIMEOUT_S)
    except Exception:
        log.exception("could not kill and reap the process after an error")
    for task in (ended, pump):
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the error that matters is the one being raised
