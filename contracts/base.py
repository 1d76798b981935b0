"""Base classes for events and commands.

Every event type is a frozen msgspec Struct with an explicit wire tag ``"<context>.<event_snake>.v<N>"``.
The tag is stored in the ``type`` column and never renamed; a new shape is a new version plus an upcaster
(see :mod:`contracts.registry`). Struct subclasses repeat ``frozen=True, kw_only=True`` so that mypy sees them.
"""

from __future__ import annotations

import re
from typing import ClassVar

import msgspec

_TAG = re.compile(r"^(?P<context>[a-z][a-z0-9_]*)\.(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)$")


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """An immutable fact. Subclasses set ``tag=...`` in their class keywords.

    ``gc=False`` (inherited): events are immutable trees that cannot form reference cycles, and a replay
    holds whole pages of them; untracked Structs keep the cyclic collector from rescanning them.
    """

    context: ClassVar[str] = ""


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """An intention. Commands are never stored; the events they produce are."""


class WireTag(msgspec.Struct, frozen=True):
    context: str
    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.context}.{self.name}.v{self.version}"


def parse_tag(tag: str) -> WireTag:
    match = _TAG.fullmatch(tag)
    if match is None:
        msg = f"wire tag {tag!r} does not match '<context>.<event_snake>.v<N>'"
        raise ValueError(msg)
    return WireTag(match["context"], match["name"], int(match["version"]))


def tag_of(event_type: type[Event]) -> str:
    tag = event_type.__struct_config__.tag
    if not isinstance(tag, str):
        msg = f"{event_type.__name__} has no explicit string wire tag"
        raise TypeError(msg)
    return tag
