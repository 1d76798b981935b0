"""The projection runtime: projectors consume events in order and write their read model and their
checkpoint in one transaction, so redelivery and restarts never apply an event twice (ADR 0005).

This module is the contract between read models and the runtime; the runner lives beside it.
"""

from __future__ import annotations

from typing import Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.envelope import RecordedEvent

Connection = asyncpg.Connection | PoolConnectionProxy
"""What ``apply`` receives: a plain connection or one lent by a pool, inside the runner's transaction."""


class Projector(Protocol):
    """One read model. ``apply`` runs inside the runtime's transaction; it must not commit or ack."""

    @property
    def name(self) -> str:
        """Checkpoint name, stable forever (renaming it rebuilds the read model)."""
        ...

    @property
    def schema(self) -> str:
        """Idempotent DDL (CREATE TABLE IF NOT EXISTS ...) of the read model's tables."""
        ...

    @property
    def tables(self) -> tuple[str, ...]:
        """Tables a replay empties before rebuilding from position 0."""
        ...

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        """Apply one event; events this projector does not handle are ignored."""
        ...
