"""The one way a command becomes events: load the stream, fold it, decide, append with the expected version.

Every context writes its deciders as pure functions (``decide(state, command, *, now) -> list[Event]``)
and its state as a fold (``evolve(state, event) -> state``); this module does the I/O around them, so
that every command records its actor, correlation/causation ids, traceparent and idempotency key the
same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

import msgspec

from contracts.base import Event
from contracts.envelope import Actor, Metadata, NewEvent, Scope
from contracts.ids import new_uuid
from services.shared.errors import ConcurrencyConflictError, IdempotencyKeyReusedError
from services.shared.eventstore.port import AppendResult, TenantEventStore

S = TypeVar("S")


class CommandContext(msgspec.Struct, frozen=True, kw_only=True):
    """Who asks, and the ids that tie this command to its request and trace."""

    actor: Actor
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    traceparent: str | None = None
    idempotency_key: str | None = None

    def metadata(self, scope: Scope) -> Metadata:
        return Metadata(
            org_id=scope.org_id,
            project_id=scope.project_id,
            environment_id=scope.environment_id,
            actor=self.actor,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            traceparent=self.traceparent,
            idempotency_key=self.idempotency_key,
        )


class Loaded(msgspec.Struct, Generic[S], frozen=True, kw_only=True):
    state: S
    version: int


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    stream_id: str
    version: int
    """The stream's version after the command: the next If-Match."""
    events: tuple[Event, ...] = ()
    deduplicated: bool = False
    global_position: int | None = None
    """Position of the last event written, for read-your-writes waits."""


async def load(store: TenantEventStore, stream_id: str, initial: S, evolve: Callable[[S, Event], S]) -> Loaded[S]:
    state, version = initial, 0
    for recorded in await store.read_stream(stream_id):
        state, version = evolve(state, recorded.payload), recorded.version
    return Loaded(state=state, version=version)


async def execute(
    store: TenantEventStore,
    stream_id: str,
    *,
    initial: S,
    evolve: Callable[[S, Event], S],
    decide: Callable[[S], Sequence[Event]],
    scope: Scope,
    context: CommandContext,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    """Run one command against one stream.

    ``expected_version`` is the caller's If-Match: when given and the stream moved on, the command is
    refused before deciding. Otherwise the version read here guards the append, so a concurrent writer
    makes this command fail with ``ConcurrencyConflictError`` rather than decide on stale state.
    """
    if context.idempotency_key is not None:
        # A retried command must be a no-op even when deciding again would now refuse it
        # (e.g. "already exists"), so the key is looked up before the stream is folded.
        prior = await store.find_command(context.idempotency_key)
        if prior is not None:
            if prior.stream_id != stream_id:
                raise IdempotencyKeyReusedError(
                    f"idempotency key {context.idempotency_key!r} was already used for stream {prior.stream_id!r}"
                )
            return CommandResult(stream_id=stream_id, version=prior.last_version, deduplicated=True)
    loaded = await load(store, stream_id, initial, evolve)
    if expected_version is not None and expected_version != loaded.version:
        raise ConcurrencyConflictError(
            f"stream {stream_id!r} is at version {loaded.version}, not {expected_version}",
            stream_id=stream_id,
            expected=expected_version,
            actual=loaded.version,
        )
    events = list(decide(loaded.state))
    if not events:
        return CommandResult(stream_id=stream_id, version=loaded.version)
    occurred_at = now or datetime.now(UTC)
    result: AppendResult = await store.append(
        stream_id,
        [NewEvent(event_id=new_uuid(), payload=event, occurred_at=occurred_at) for event in events],
        expected_version=loaded.version,
        metadata=context.metadata(scope),
    )
    return CommandResult(
        stream_id=stream_id,
        version=result.last_version,
        events=tuple(events),
        deduplicated=result.deduplicated,
        global_position=result.positions[-1].global_position if result.positions else None,
    )
