"""The feed port: what a projector or runner sees of the event flow, whatever carries it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from contracts.envelope import Position, RecordedEvent

Handler = Callable[[list[RecordedEvent]], Awaitable[None]]
"""Applies one batch and commits its effects (and its checkpoint) before returning."""


class EventFeed(Protocol):
    async def run(self, name: str, after: Position, handler: Handler, stop: asyncio.Event) -> None:
        """Deliver every event strictly after ``after``, in ``(tx_id, global_position)`` order, until ``stop`` is set.

        ``name`` identifies the follower (a durable consumer on NATS). Batches are non-empty and never repeat an
        event within one run. A batch is acknowledged only after ``handler`` returned; an exception from the
        handler stops the feed and is re-raised, with that batch unacknowledged, so the next run (from the
        handler's own checkpoint) sees it again.
        """
        ...
