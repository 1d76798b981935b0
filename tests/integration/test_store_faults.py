"""Fault test: PostgreSQL restarted under load (a fast shutdown, then a crash and recovery).

A private PostgreSQL 16 (the binaries of the ``pgserver`` wheel, the same server the embedded default runs) is
created in a temporary directory on a free loopback port, so that it can be restarted without disturbing other
work on the shared server. Four writers append through one store (one pool) with idempotency keys and retry
every command that fails with ``InfrastructureError``. Afterwards every acknowledged command is stored exactly
once, retried commands did not duplicate, versions are gap-free, and the pool served appends after each restart.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from contracts.base import Event
from contracts.envelope import Actor, Metadata, NewEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from services.shared.errors import InfrastructureError
from services.shared.eventstore.port import ANY_VERSION, AppendResult
from services.shared.eventstore.postgres import PostgresEventStore
from tests.services import free_port, port_open

pytestmark = pytest.mark.slow


class Deposited(Event, frozen=True, kw_only=True, tag="lgtest.deposited.v1"):
    writer: int
    command: int
    n: int


REGISTRY = EventRegistry()
REGISTRY.register(Deposited)

WRITERS = 4
COMMAND_DEADLINE_S = 90.0
RETRY_BACKOFF_S = 0.02
PROGRESS_PER_PHASE = 150


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` from the pgserver wheel; as root the server runs as the ``pgserver`` user."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns on import when XDG_RUNTIME_DIR is unset
            from pgserver import _commands, utils  # noqa: PLC0415 - heavy, only for this test

        self.bin = Path(_commands.POSTGRES_BIN_PATH)
        self.root = Path(tempfile.mkdtemp(prefix="lgtest-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root; do what pgserver does for the embedded server
            self.user = "pgserver"
            utils.ensure_user_exists(self.user)
            utils.ensure_prefix_permissions(self.bin)
            readable = stat.S_IRGRP | stat.S_IROTH
            utils.ensure_folder_permissions(self.bin, readable | stat.S_IXGRP | stat.S_IXOTH)
            utils.ensure_folder_permissions(self.bin.parent / "lib", readable)
            utils.ensure_prefix_permissions(self.root)
            shutil.chown(self.root, self.user, self.user)

    async def _run(self, tool: str, *args: str, timeout: float = 120.0) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(self.bin / tool),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            user=self.user,
            cwd=self.root,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            msg = f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{out.decode(errors='replace')}\n{log}"
            raise RuntimeError(msg)

    async def init_and_start(self) -> None:
        await self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=UTF8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=on -c synchronous_commit=on"
        await self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    async def restart(self, mode: str) -> None:
        """``pg_ctl restart`` keeps the server options of the last start (postmaster.opts), but not the log file:
        without ``-l`` the new postmaster would inherit our stdout pipe and ``communicate()`` would never end."""
        await self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "120", "restart")

    async def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                await self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        await server.init_and_start()
        assert port_open("127.0.0.1", server.port)
        yield server
    finally:
        await server.destroy()


@dataclass
class Acked:
    key: str
    stream: str
    first: int
    last: int
    event_ids: list[uuid.UUID]
    deduplicated: bool


@dataclass
class Load:
    acked: list[Acked] = field(default_factory=list)
    infrastructure_errors: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def until_acked(self, count: int, writers: list[asyncio.Task[None]], timeout: float = 120.0) -> None:
        """Wait for ``count`` acknowledged commands; a writer that died fails the wait at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.acked) < count:
            for task in writers:
                if task.done():
                    task.result()  # re-raises the writer's error
                    pytest.fail("a writer stopped early")
            if loop.time() > deadline:
                pytest.fail(f"only {len(self.acked)} of {count} commands acknowledged within {timeout}s")
            self.progress.clear()
            progressed = asyncio.ensure_future(self.progress.wait())
            await asyncio.wait([progressed, *writers], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            progressed.cancel()


async def append_until_acknowledged(
    store: PostgresEventStore,
    stream: str,
    events: list[NewEvent],
    *,
    expected: int | None,
    metadata: Metadata,
    load: Load,
) -> tuple[AppendResult, bool]:
    """Send one command until the store acknowledges it; a retry is the very same command (key, events, expectation)."""
    deadline = asyncio.get_running_loop().time() + COMMAND_DEADLINE_S
    retried = False
    while True:
        try:
            result = await store.for_tenant("acme").append(stream, events, expected_version=expected, metadata=metadata)
        except InfrastructureError:
            load.infrastructure_errors += 1
            retried = True
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(RETRY_BACKOFF_S)  # back-off before a retry, not a synchronisation
        else:
            return result, retried


async def writer(store: PostgresEventStore, w: int, load: Load) -> None:
    own_stream, version, command = f"account-w{w}", 0, 0
    while not load.stop.is_set():
        command += 1
        shared = command % 3 == 0  # every third command goes to a stream that all writers share
        stream = "ledger-shared" if shared else own_stream
        now = datetime.now(UTC)
        events = [
            NewEvent(event_id=new_uuid(), payload=Deposited(writer=w, command=command, n=n), occurred_at=now)
            for n in range(1 + command % 4)
        ]
        key = f"w{w}-c{command}"
        metadata = Metadata(actor=Actor(subject=f"writer:{w}"), correlation_id=uuid.uuid4(), idempotency_key=key)
        expected = ANY_VERSION if shared else version
        result, retried = await append_until_acknowledged(
            store, stream, events, expected=expected, metadata=metadata, load=load
        )
        assert result.last_version - result.first_version + 1 == len(events), result
        assert not result.deduplicated or retried, f"{key} deduplicated on its first attempt"
        if not shared:
            assert result.first_version == version + 1, (key, result)
            version = result.last_version
        ids = [e.event_id for e in events]
        load.acked.append(Acked(key, stream, result.first_version, result.last_version, ids, result.deduplicated))
        load.progress.set()


async def test_postgres_restarted_under_load_loses_and_duplicates_nothing(private_pg: PrivatePostgres) -> None:
    store = await PostgresEventStore.connect(private_pg.url, min_size=WRITERS, max_size=WRITERS)
    store = PostgresEventStore(store.pool, registry=REGISTRY)
    load = Load()
    tasks = [asyncio.create_task(writer(store, w, load)) for w in range(WRITERS)]
    acked_before: dict[str, int] = {}
    try:
        await load.until_acked(PROGRESS_PER_PHASE, tasks)
        for mode in ("fast", "immediate"):
            await private_pg.restart(mode)
            acked_before[mode] = len(load.acked)
            # The pool must recover by itself: the same store keeps acknowledging appends after the restart.
            await load.until_acked(acked_before[mode] + PROGRESS_PER_PHASE, tasks)
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        load.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()

    assert load.infrastructure_errors > 0, "the restarts never reached a writer: the test proved nothing"

    conn = await asyncpg.connect(private_pg.url)
    try:
        rows = await conn.fetch("SELECT stream_id, version, event_id, data FROM events ORDER BY stream_id, version")
        keys = await conn.fetch("SELECT idempotency_key, stream_id, first_version, last_version FROM command_log")
    finally:
        await conn.close()

    acked_ids = [i for a in load.acked for i in a.event_ids]
    stored_ids = [r["event_id"] for r in rows]
    assert len(set(acked_ids)) == len(acked_ids)
    assert len(stored_ids) == len(set(stored_ids)), "an event was stored twice"
    assert set(stored_ids) == set(acked_ids), "stored events differ from the acknowledged ones"

    by_stream: dict[str, list[int]] = {}
    for r in rows:
        by_stream.setdefault(r["stream_id"], []).append(r["version"])
    for stream, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), f"{stream} has gaps or duplicates"

    stored_at = {(r["stream_id"], r["version"]): r["event_id"] for r in rows}
    for a in load.acked:  # each acknowledged command sits exactly where its acknowledgement said
        assert [stored_at[(a.stream, v)] for v in range(a.first, a.last + 1)] == a.event_ids, a.key

    assert sorted(k["idempotency_key"] for k in keys) == sorted(a.key for a in load.acked)
    for k in keys:
        stored_first_last = (k["stream_id"], k["first_version"], k["last_version"])
        ack = next(a for a in load.acked if a.key == k["idempotency_key"])
        assert stored_first_last == (ack.stream, ack.first, ack.last)

    assert len(load.acked) >= 3 * PROGRESS_PER_PHASE
    # Typically a few commands per run committed but lost their acknowledgement in a restart; their retries were
    # answered from the command log (deduplicated=True) and the checks above show they were not stored twice.
