"""The runner's writer of one run stream: appends its events in order, fenced by the stream version.

The runner is not the stream's only writer: people append cancel requests, and the reaper of another
runner may end or re-queue the run when this runner's lease lapsed. Every append therefore names the
version this runner last saw. A conflict means someone else wrote: the journal reads what they wrote,
applies it (a cancel request sets ``cancel``; an end or re-queue that is not ours means the lease is lost
and sets ``lost``) and appends again after it. Node events are buffered and flushed in batches, so that a
project of thousands of nodes costs a few appends per second rather than one per log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from contracts.base import Event
from contracts.envelope import Actor, NewEvent, Scope
from contracts.events.runs import RunCanceled, RunCancelRequested, RunFinished, RunRequeued, RunStarted
from services.runs.domain import run_stream
from services.shared.commands import CommandContext
from services.shared.errors import ConcurrencyConflictError
from services.shared.eventstore.port import TenantEventStore

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
FLUSH_EVENTS = 200


class RunLostError(Exception):
    """Someone else ended, re-queued or restarted the run: this runner must stop without writing more."""


class Journal:
    def __init__(
        self,
        store: TenantEventStore,
        run_id: uuid.UUID,
        *,
        version: int,
        attempt: int,
        actor: Actor,
        scope: Scope,
    ) -> None:
        self._store = store
        self._stream = run_stream(run_id)
        self._version = version
        self._attempt = attempt
        self._context = CommandContext(actor=actor, correlation_id=run_id)
        self._scope = scope
        self._lock = asyncio.Lock()
        self._pending: list[Event] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.cancel = asyncio.Event()
        """Set when a cancel request is read from the stream."""
        self.canceled_by: tuple[str, str] = ("", "")
        """Who asked to cancel, and why."""
        self.lost = asyncio.Event()
        """Set when the run is no longer this runner's."""

    @property
    def version(self) -> int:
        return self._version

    async def append(self, events: Sequence[Event]) -> None:
        """Append now (after whatever is buffered), retrying after other writers' events."""
        async with self._lock:
            await self._write([*self._pending, *events])
            self._pending.clear()

    def buffer(self, event: Event) -> None:
        """Append soon, with the next batch (node events)."""
        self._pending.append(event)
        if len(self._pending) >= FLUSH_EVENTS:
            self._wake.set()

    def start_flushing(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"journal-{self._stream}")

    async def stop_flushing(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if self._pending:
                batch, self._pending = self._pending, []
                await self._write(batch)

    async def poll(self) -> None:
        """Read what others appended (a cancel request?) without writing."""
        async with self._lock:
            await self._read_others()

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except RunLostError:
                return
            except Exception:  # the store is briefly unavailable: keep the events and try again
                log.exception("runner: appending node events to %s failed; retrying", self._stream)

    async def _write(self, events: list[Event]) -> None:
        if not events:
            return
        if self.lost.is_set():
            raise RunLostError(self._stream)
        at = datetime.now(UTC)
        while True:
            try:
                result = await self._store.append(
                    self._stream,
                    [NewEvent(event_id=uuid.uuid4(), payload=event, occurred_at=at) for event in events],
                    expected_version=self._version,
                    metadata=self._context.metadata(self._scope),
                )
            except ConcurrencyConflictError:
                await self._read_others()
                continue
            self._version = result.last_version
            return

    async def _read_others(self) -> None:
        for recorded in await self._store.read_stream(self._stream, after_version=self._version):
            self._version = recorded.version
            payload = recorded.payload
            if isinstance(payload, RunCancelRequested):
                self.canceled_by = (recorded.metadata.actor.subject, payload.reason)
                self.cancel.set()
            elif isinstance(payload, RunFinished | RunRequeued | RunCanceled) or (
                isinstance(payload, RunStarted) and payload.attempt != self._attempt
            ):
                self.lost.set()
        if self.lost.is_set():
            raise RunLostError(self._stream)
