"""Which wire tag decodes to which Struct, and how old versions are upcast to the current one.

Stored events are never rewritten. When an event type gets a new shape, the old Struct stays registered
under its old tag and an upcaster turns a decoded old event into the new one at read time, so every
reader only ever sees the current version of each event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from contracts.base import Event, parse_tag, tag_of


class UnknownEventTypeError(LookupError):
    """A stored or received event carries a wire tag that no registered Struct answers to."""

    def __init__(self, tag: str) -> None:
        super().__init__(f"unknown event type {tag!r}")
        self.tag = tag


class EventDecodeError(ValueError):
    """An event's payload does not match the Struct its tag names; the message carries the JSON path."""


Upcaster = Callable[[Any], Event]


@dataclass
class EventRegistry:
    _types: dict[str, type[Event]] = field(default_factory=dict)
    _decoders: dict[str, msgspec.json.Decoder[Any]] = field(default_factory=dict)
    _upcasters: dict[str, tuple[str, Upcaster]] = field(default_factory=dict)
    _encoder: msgspec.json.Encoder = field(default_factory=msgspec.json.Encoder)

    def register(self, *event_types: type[Event]) -> None:
        for event_type in event_types:
            tag = tag_of(event_type)
            parse_tag(tag)  # refuses a malformed tag at import time
            known = self._types.get(tag)
            if known is not None and known is not event_type:
                msg = f"wire tag {tag!r} is already taken by {known.__qualname__}"
                raise ValueError(msg)
            self._types[tag] = event_type
            self._decoders[tag] = msgspec.json.Decoder(event_type)

    def register_upcaster(self, old: type[Event], new: type[Event], upcast: Upcaster) -> None:
        old_tag, new_tag = tag_of(old), tag_of(new)
        old_wire, new_wire = parse_tag(old_tag), parse_tag(new_tag)
        if (old_wire.context, old_wire.name) != (new_wire.context, new_wire.name) or (
            new_wire.version != old_wire.version + 1
        ):
            msg = f"an upcaster goes from one version to the next of one event: {old_tag} -> {new_tag}"
            raise ValueError(msg)
        self.register(old, new)
        self._upcasters[old_tag] = (new_tag, upcast)

    def type_for(self, tag: str) -> type[Event]:
        try:
            return self._types[tag]
        except KeyError:
            raise UnknownEventTypeError(tag) from None

    def is_known(self, tag: str) -> bool:
        return tag in self._types

    @property
    def tags(self) -> Iterable[str]:
        return self._types.keys()

    def current_tags(self) -> list[str]:
        """Tags that readers see: every registered tag that is not upcast to a newer one."""
        return sorted(tag for tag in self._types if tag not in self._upcasters)

    def encode(self, event: Event) -> bytes:
        """The stored ``data`` column: the payload without its tag (the tag has a column of its own).

        msgspec writes a tagged Struct's tag first, as ``{"type":"<tag>",...``, and tags never need JSON
        escaping (``parse_tag``), so the tag is cut from the encoded bytes rather than going through a dict
        (which cost as much as the encoding itself on large payloads).
        """
        tag = tag_of(type(event))  # refuses unregistered shapes early
        encoded = self._encoder.encode(event)
        head = b'{"type":"' + tag.encode() + b'"'
        if not encoded.startswith(head):  # pragma: no cover - msgspec's documented field order
            raw = msgspec.to_builtins(event)
            raw.pop("type", None)
            return self._encoder.encode(raw)
        rest = encoded[len(head) :]
        return b"{" + (rest[1:] if rest.startswith(b",") else rest)

    def decode(self, tag: str, data: str | bytes) -> Event:
        """Decode a stored payload and upcast it to the current version of its type.

        This is the replay hot path. The stored JSON omits the tag (it has a column of its own); a tagged
        Struct decoded on its own does not need it, so the body is decoded as it is, str or bytes.
        """
        decoder = self._decoders.get(tag)
        if decoder is None:
            raise UnknownEventTypeError(tag)
        try:
            event: Event = decoder.decode(data)
        except msgspec.DecodeError as exc:  # ValidationError (wrong shape) is a subclass; plain DecodeError is bad JSON
            raise EventDecodeError(f"{tag}: {exc}") from exc
        if self._upcasters:
            while (step := self._upcasters.get(tag_of(type(event)))) is not None:
                event = step[1](event)
        return event


REGISTRY = EventRegistry()
"""The process-wide registry; each ``contracts.events.<context>`` module registers its types on import."""
