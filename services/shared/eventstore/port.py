"""The event-store port. Every call that returns events is scoped to one tenant, except the global
feed, which only infrastructure followers (the relay and the projector runtime) use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from contracts.envelope import Metadata, NewEvent, Position, RecordedEvent

ANY_VERSION: None = None
"""Append without an optimistic-concurrency check (the store still keeps stream versions gap-free)."""
NO_STREAM = 0
"""Expect the stream not to exist yet: creating it twice is a conflict."""


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    stream_id: str
    first_version: int
    last_version: int
    positions: tuple[Position, ...] = ()
    deduplicated: bool = False
    """True when the idempotency key had been seen: nothing was written this time."""


class TenantEventStore(Protocol):
    @property
    def tenant_id(self) -> str: ...

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        metadata: Metadata,
    ) -> AppendResult:
        """Append all events of one command atomically, in one round trip.

        Raises ``ConcurrencyConflictError`` when the stream is not at ``expected_version`` (nothing written).
        With ``metadata.idempotency_key`` set, a repeated call is a no-op returning ``deduplicated=True``.
        """
        ...

    async def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]: ...

    async def find_command(self, idempotency_key: str) -> AppendResult | None:
        """The result of an earlier append made with this idempotency key, if any (``deduplicated=True``)."""
        ...

    async def stream_version(self, stream_id: str) -> int: ...

    async def read_after(
        self,
        after: Position,
        *,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        stream_id: str | None = None,
    ) -> list[RecordedEvent]:
        """The tenant's committed events after ``after`` in commit-safe order."""
        ...


class GlobalFeed(Protocol):
    async def read_all(self, after: Position, *, limit: int = 1000) -> list[RecordedEvent]:
        """Every tenant's committed events after ``after``, in commit-safe ``(tx_id, position)`` order."""
        ...

    async def head(self) -> Position:
        """The position of the newest event a tailing reader may see now."""
        ...

    async def newest(self) -> Position:
        """The position of the newest committed event, which the visibility horizon may still hide."""
        ...


class EventStore(GlobalFeed, Protocol):
    def for_tenant(self, tenant_id: str) -> TenantEventStore: ...
