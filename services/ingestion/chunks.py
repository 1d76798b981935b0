"""Cutting a long list of records into events that each fit in one NATS message.

A first ingestion of a 9,000-node project is tens of megabytes of node records; one event holding them
would exceed NATS' default 1 MiB message limit and make every consumer decode it whole. Records are
therefore grouped, in order, into chunks of at most ``CHUNK_BYTES`` of encoded JSON (a single record
larger than that gets a chunk of its own; the store and NATS accept up to their own, larger, limits).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import msgspec

T = TypeVar("T")

CHUNK_BYTES = 256 * 1024
"""Target size of one event's records: a quarter of NATS' default max_payload, leaving room for the
envelope, headers and JSON escaping differences between our encoder and the store's."""

_encoder = msgspec.json.Encoder()


def chunked(records: Sequence[T], limit: int = CHUNK_BYTES) -> Iterator[tuple[T, ...]]:
    """Consecutive groups of ``records`` whose encoded JSON adds up to at most ``limit`` bytes."""
    chunk: list[T] = []
    size = 0
    buffer = bytearray()
    for record in records:
        _encoder.encode_into(record, buffer)
        length = len(buffer)
        if chunk and size + length > limit:
            yield tuple(chunk)
            chunk, size = [], 0
        chunk.append(record)
        size += length
    if chunk:
        yield tuple(chunk)
