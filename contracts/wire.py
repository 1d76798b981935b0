"""How a stored event travels over NATS: the full envelope plus the payload as stored.

Consumers decode it without asking PostgreSQL; the payload is kept raw so that an event type this
consumer does not know can still be skipped (or reported) by its envelope alone.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from contracts.base import parse_tag, tag_of
from contracts.envelope import Metadata, Position, RecordedEvent
from contracts.registry import REGISTRY, EventRegistry


class WireEvent(msgspec.Struct, frozen=True, kw_only=True):
    event_id: uuid.UUID
    type: str
    schema_version: int
    stream_id: str
    version: int
    tx_id: int
    global_position: int
    tenant_id: str
    metadata: Metadata
    occurred_at: datetime
    recorded_at: datetime
    data: msgspec.Raw

    @property
    def position(self) -> Position:
        return Position(self.tx_id, self.global_position)

    def to_recorded(self, registry: EventRegistry = REGISTRY) -> RecordedEvent:
        """Decode the payload (upcast to its current version). Raises ``UnknownEventTypeError``."""
        return RecordedEvent(
            event_id=self.event_id,
            type=self.type,
            schema_version=self.schema_version,
            stream_id=self.stream_id,
            version=self.version,
            position=self.position,
            tenant_id=self.tenant_id,
            metadata=self.metadata,
            occurred_at=self.occurred_at,
            recorded_at=self.recorded_at,
            payload=registry.decode(self.type, bytes(self.data)),
        )


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(WireEvent)


def encode_wire(event: RecordedEvent, registry: EventRegistry = REGISTRY) -> bytes:
    """Encode with the payload's own (current) tag: a stored v1 event read as v2 travels as v2."""
    tag = tag_of(type(event.payload))
    wire = WireEvent(
        event_id=event.event_id,
        type=tag,
        schema_version=parse_tag(tag).version,
        stream_id=event.stream_id,
        version=event.version,
        tx_id=event.position.tx_id,
        global_position=event.position.global_position,
        tenant_id=event.tenant_id,
        metadata=event.metadata,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        data=msgspec.Raw(registry.encode(event.payload)),
    )
    return _ENCODER.encode(wire)


def decode_wire(body: bytes) -> WireEvent:
    """Raises ``msgspec.ValidationError``/``DecodeError`` for a malformed message."""
    return _DECODER.decode(body)
