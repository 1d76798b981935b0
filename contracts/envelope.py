"""The event envelope: everything about an event except its payload (DESIGN.md §3).

Envelope Structs are declared ``gc=False``: they are immutable and acyclic, and a replay keeps pages of them
alive, which otherwise makes the cyclic garbage collector rescan them (measured: a third of replay time).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from contracts.base import Event


class Actor(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Who caused an event, as they were at that time (roles are copied, not referenced)."""

    subject: str
    display_name: str = ""
    roles: tuple[str, ...] = ()


SYSTEM_ACTOR = Actor(subject="system:lockgate", display_name="Lockgate", roles=("system",))


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """Where an event belongs. The tenant is mandatory; the rest narrows it down."""

    tenant_id: str
    org_id: str | None = None
    project_id: str | None = None
    environment_id: str | None = None


class Metadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What the ``metadata`` column holds: the envelope fields that have no column of their own."""

    org_id: str | None = None
    project_id: str | None = None
    environment_id: str | None = None
    actor: Actor
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    traceparent: str | None = None
    idempotency_key: str | None = None


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be appended: its payload plus the envelope fields that the writer chooses."""

    event_id: uuid.UUID
    payload: Event
    occurred_at: datetime


class Position(msgspec.Struct, frozen=True, order=True, gc=False):
    """A place in the global, commit-safe order: ``(tx_id, global_position)``.

    Tailing readers order and checkpoint by this pair, never by ``global_position`` alone (DESIGN.md §2).
    """

    tx_id: int
    global_position: int


ORIGIN = Position(0, 0)


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A stored event with its full envelope."""

    event_id: uuid.UUID
    type: str
    schema_version: int
    stream_id: str
    version: int
    position: Position
    tenant_id: str
    metadata: Metadata
    occurred_at: datetime
    recorded_at: datetime
    payload: Event

    @property
    def global_position(self) -> int:
        return self.position.global_position
