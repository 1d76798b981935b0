"""Named checkpoints of followers (the relay, projectors): how far each got, as a ``Position``.

The functions take any asyncpg executor, so a projector saves its checkpoint on the connection of its own
transaction, in the same commit as its read-model changes (EVENTSTORE.md §8.5).
``tx_id`` is an ``xid8``; asyncpg has no codec for it, so it travels as text both ways.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.envelope import Position

Executor: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[Any] | asyncpg.Pool"
"""Anything that runs a statement: a connection (inside or outside a transaction) or the pool."""

_LOAD = "SELECT tx_id::text::bigint AS tx_id, global_position FROM checkpoints WHERE name = $1"
_SAVE = """
INSERT INTO checkpoints (name, tx_id, global_position, updated_at) VALUES ($1, $2::text::xid8, $3, now())
ON CONFLICT (name) DO UPDATE
SET tx_id = excluded.tx_id, global_position = excluded.global_position, updated_at = excluded.updated_at
"""
MAX_NAME_LENGTH = 200


async def load_checkpoint(db: Executor, name: str) -> Position | None:
    """The saved position of ``name``, or None when it never saved one (start from ``ORIGIN``)."""
    name = _checked(name)
    row = await db.fetchrow(_LOAD, name)
    return None if row is None else Position(row["tx_id"], row["global_position"])


async def save_checkpoint(db: Executor, name: str, position: Position) -> None:
    """Upsert ``name``'s position. Not monotonic on purpose: a rebuild moves a checkpoint back to the origin."""
    name = _checked(name)
    await db.execute(_SAVE, name, str(position.tx_id), position.global_position)


def _checked(name: str) -> str:
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        msg = f"checkpoint name must be 1..{MAX_NAME_LENGTH} printable characters, not {name!r}"
        raise ValueError(msg)
    return name
