"""Identifier types shared by every context.

Stream ids follow the message-db convention ``<category>-<id>``: the category is the text before
the first ``-`` and names the aggregate type, so categories must never contain a ``-``.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import NewType

TenantId = NewType("TenantId", str)
OrgId = NewType("OrgId", str)
ProjectId = NewType("ProjectId", str)
EnvironmentId = NewType("EnvironmentId", str)
StreamId = NewType("StreamId", str)

# Slugs name tenants, orgs, projects and environments in URLs, NATS subjects and stream ids, so they
# are restricted to characters that are safe in all three (no '.', '*', '>', '-', whitespace or quotes).
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_]{0,62}$"
_SLUG = re.compile(SLUG_PATTERN)


def is_slug(value: str) -> bool:
    return _SLUG.fullmatch(value) is not None


def stream_id(category: str, key: str) -> StreamId:
    """Build ``<category>-<key>``; the key may itself contain ``-`` (uuids do)."""
    if not is_slug(category):
        msg = f"stream category {category!r} is not a slug"
        raise ValueError(msg)
    return StreamId(f"{category}-{key}")


def category_of(stream: str) -> str:
    return stream.split("-", 1)[0]


def new_uuid() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): the millisecond clock in the high bits keeps index inserts local."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 random bits, 74 of them used
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return uuid.UUID(int=value)
