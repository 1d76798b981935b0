"""The event log as the API shows it: envelope plus payload, and an opaque position cursor."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import msgspec

from contracts.envelope import ORIGIN, Metadata, Position, RecordedEvent

_CURSOR = re.compile(r"^(\d{1,19}):(\d{1,19})$")


def format_cursor(position: Position) -> str:
    """``<tx_id>:<global_position>``: the commit-safe order is by both, so a cursor carries both."""
    return f"{position.tx_id}:{position.global_position}"


def parse_cursor(cursor: str) -> Position:
    """The inverse of ``format_cursor``; ``"0"`` is the origin. Raises ValueError for anything else."""
    if cursor.strip() == "0":
        return ORIGIN
    match = _CURSOR.fullmatch(cursor.strip())
    if match is None:
        msg = f"position {cursor[:60]!r} is not a cursor of the form '<tx_id>:<global_position>' (or '0')"
        raise ValueError(msg)
    tx_id, position = int(match[1]), int(match[2])
    if tx_id >= 2**63 or position >= 2**63:
        msg = f"position {cursor[:60]!r} is out of range"
        raise ValueError(msg)
    return Position(tx_id, position)


class EventView(msgspec.Struct, frozen=True, kw_only=True):
    event_id: uuid.UUID
    type: str
    schema_version: int
    stream_id: str
    version: int
    position: str
    """Cursor of this event; pass it as ``after`` to read what follows."""
    global_position: int
    tenant_id: str
    metadata: Metadata
    occurred_at: datetime
    recorded_at: datetime
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: RecordedEvent) -> EventView:
        return cls(
            event_id=event.event_id,
            type=event.type,
            schema_version=event.schema_version,
            stream_id=event.stream_id,
            version=event.version,
            position=format_cursor(event.position),
            global_position=event.position.global_position,
            tenant_id=event.tenant_id,
            metadata=event.metadata,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            payload=msgspec.to_builtins(event.payload),
        )


class EventList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[EventView]
    next_after: str | None = None
    """The cursor of the last item when the page is full; absent when there is nothing more right now."""
