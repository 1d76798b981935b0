"""Work distribution: where a runner learns that a run is waiting for it (ADR 0013).

A ``Ticket`` says "run R of tenant T may be runnable"; it is a hint, never an authority. The runner checks
the run's stream (is it approved or queued?) and takes its lease before anything runs, so a duplicate,
stale or replayed ticket is harmless. Two sources:

* ``JetStreamTickets`` (distributed): durable pull consumers on the events stream, filtered to
  ``runs.plan_approved`` and ``runs.run_requeued``. Every runner process pulls from the same durable
  consumers, so JetStream hands each message to one of them (work-queue semantics); a message is
  acknowledged once its run is taken or no longer runnable, and negatively acknowledged with a delay while
  the environment's quota is full (the run waits ``queued``). A runner that dies before acknowledging leaves
  the message to be redelivered after ``ack_wait``. A runner waits, rather than fails, while the stream does
  not exist yet (runners and the relay that creates it start in any order) or NATS is unreachable.
* ``PollingTickets`` (embedded default, and ``lockgate run --wait``): the runs read model, caught up in
  process, lists approved and queued runs without a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg
import msgspec
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.events.runs import PlanApproved, RunRequeued
from contracts.registry import REGISTRY
from contracts.wire import decode_wire
from services.shared.bus.inprocess import Backoff, sleep_or_stop
from services.shared.bus.nats import NATS_UNAVAILABLE
from services.shared.errors import InfrastructureError

log = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 30.0
RETRY_CAP_SECONDS = 2.0
"""Longest wait between two attempts to reach JetStream."""


class Ticket(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    run_id: uuid.UUID
    done: Callable[[], Awaitable[None]]
    """The ticket is settled: the run was taken, or it is not runnable any more."""
    later: Callable[[float], Awaitable[None]]
    """Offer the run again after this many seconds (its environment's quota is full)."""


class Tickets(Protocol):
    async def next(self, stop: asyncio.Event) -> Ticket | None:
        """The next run to try, or None once ``stop`` is set."""
        ...

    async def close(self) -> None: ...


async def _nothing() -> None:
    return None


class PollingTickets:
    """Approved and queued runs without a lease, from the runs read model (caught up first)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        catch_up: Callable[[], Awaitable[None]],
        *,
        interval: float = 0.2,
    ) -> None:
        self._pool = pool
        self._catch_up = catch_up
        self._interval = interval
        self._pending: list[tuple[str, uuid.UUID]] = []
        self._not_before: dict[tuple[str, uuid.UUID], float] = {}

    async def next(self, stop: asyncio.Event) -> Ticket | None:
        while not stop.is_set():
            if not self._pending:
                self._pending = await self._runnable()
            while self._pending:
                key = self._pending.pop(0)
                if self._not_before.get(key, 0.0) <= time.monotonic():
                    self._not_before.pop(key, None)
                    return self._ticket(*key)
            if await sleep_or_stop(stop, self._interval):
                break
        return None

    def _ticket(self, tenant_id: str, run_id: uuid.UUID) -> Ticket:
        async def later(delay: float) -> None:
            self._not_before[(tenant_id, run_id)] = time.monotonic() + delay

        return Ticket(tenant_id=tenant_id, run_id=run_id, done=_nothing, later=later)

    async def _runnable(self) -> list[tuple[str, uuid.UUID]]:
        try:
            await self._catch_up()
            rows = await self._pool.fetch(
                "SELECT r.tenant_id, r.run_id FROM runs r WHERE r.status IN ('approved', 'queued') AND NOT EXISTS "
                "(SELECT 1 FROM runner_leases l WHERE l.tenant_id = r.tenant_id AND l.run_id = r.run_id) "
                "ORDER BY r.updated_at LIMIT 100"
            )
        except asyncpg.UndefinedTableError:  # a fresh database: the projector has not created its table yet
            return []
        except InfrastructureError as exc:
            # The runs read model could not catch up in time (a large ingestion projecting on a loaded machine):
            # nothing is lost, the next poll looks again.
            log.warning("no runnable runs this time: %s", exc.message)
            return []
        return [(row["tenant_id"], row["run_id"]) for row in rows]

    async def close(self) -> None:
        return None


class JetStreamTickets:
    """Pull consumers shared by every runner: JetStream gives each approval to one of them."""

    SUBJECTS = ("plan_approved", "run_requeued")

    def __init__(self, nc: NatsClient, *, stream: str, prefix: str, durable: str = "lockgate-runners") -> None:
        self._nc = nc
        self._stream = stream
        self._prefix = prefix
        self._durable = durable
        self._subscriptions: list[nats.js.JetStreamContext.PullSubscription] = []
        self._turn = 0

    async def _open(self) -> None:
        js = self._nc.jetstream()
        subscriptions: list[nats.js.JetStreamContext.PullSubscription] = []
        try:
            for name in self.SUBJECTS:
                config = ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=ACK_WAIT_SECONDS,
                    max_deliver=-1,
                    deliver_policy=DeliverPolicy.ALL,
                )
                subscriptions.append(
                    await js.pull_subscribe(
                        f"{self._prefix}.*.runs.{name}",
                        durable=f"{self._durable}-{name.replace('_', '-')}",
                        stream=self._stream,
                        config=config,
                    )
                )
        except BaseException:
            await _unsubscribe(subscriptions)  # all or nothing: never pull from one consumer only
            raise
        self._subscriptions = subscriptions

    async def next(self, stop: asyncio.Event) -> Ticket | None:
        """The next approval or requeue. Waits (never raises) while JetStream cannot serve us: the stream does
        not exist yet (the relay creates it on its first start, perhaps after this runner's), NATS is
        reconnecting, or our consumer was deleted; the consumers are then opened again."""
        backoff = Backoff(cap=RETRY_CAP_SECONDS)
        while not stop.is_set():
            try:
                if not self._subscriptions:
                    await self._open()
                subscription = self._subscriptions[self._turn % len(self._subscriptions)]
                self._turn += 1
                messages = await subscription.fetch(1, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except NATS_UNAVAILABLE as exc:
                log.warning("runner: JetStream stream %s unavailable (%s); retrying", self._stream, exc)
                await _unsubscribe(self._subscriptions)
                self._subscriptions = []
                await backoff.sleep(stop)
                continue
            backoff.reset()
            for msg in messages:
                ticket = await self._ticket(msg)
                if ticket is not None:
                    return ticket
        return None

    async def _ticket(self, msg: Msg) -> Ticket | None:
        try:
            recorded = decode_wire(msg.data).to_recorded(REGISTRY)
        except Exception:  # a message we cannot read is not a run to execute; never redeliver it
            log.exception("runner: undecodable message on %s terminated", msg.subject)
            await _settle(msg.term())
            return None
        payload = recorded.payload
        if not isinstance(payload, PlanApproved | RunRequeued):
            await _settle(msg.ack())
            return None

        async def later(delay: float) -> None:
            await msg.nak(delay=delay)

        return Ticket(tenant_id=recorded.tenant_id, run_id=payload.run_id, done=msg.ack, later=later)

    async def close(self) -> None:
        await _unsubscribe(self._subscriptions)
        self._subscriptions = []


async def _settle(settling: Awaitable[None]) -> None:
    """Ack or term a message that is no run to take; if NATS is unreachable it comes back after ``ack_wait``."""
    try:
        await settling
    except NATS_UNAVAILABLE as exc:
        log.warning("runner: could not settle a message (%s); it will be redelivered", exc)


async def _unsubscribe(subscriptions: list[nats.js.JetStreamContext.PullSubscription]) -> None:
    """Unsubscribe (the durable consumers stay, for the other runners and our next start)."""
    for subscription in subscriptions:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
