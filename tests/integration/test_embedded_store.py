"""The embedded default: ``start_embedded_postgres(home)`` starts a real PostgreSQL from the pgserver wheel, the
same store code migrates it and appends to it, and a later start on the same home reuses the data."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.base import Event
from contracts.envelope import Actor, Metadata, NewEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from services.shared.embedded import start_embedded_postgres
from services.shared.eventstore.port import NO_STREAM
from services.shared.eventstore.postgres import PostgresEventStore

pytestmark = pytest.mark.slow


class Noted(Event, frozen=True, kw_only=True, tag="lgtest.noted.v1"):
    text: str


REGISTRY = EventRegistry()
REGISTRY.register(Noted)


def note(text: str) -> NewEvent:
    return NewEvent(event_id=new_uuid(), payload=Noted(text=text), occurred_at=datetime.now(UTC))


def meta() -> Metadata:
    return Metadata(actor=Actor(subject="user:local"), correlation_id=uuid.uuid4())


@pytest.fixture
def home() -> Iterator[Path]:
    # Not pytest's tmp_path: pgserver opens every parent directory to its server user when run as root.
    path = Path(tempfile.mkdtemp(prefix="lgtest-home-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def start(home: Path) -> tuple[str, Any]:
    return await asyncio.to_thread(start_embedded_postgres, home)


async def stop(handle: Any) -> None:
    await asyncio.to_thread(handle.cleanup)


async def open_store(dsn: str) -> PostgresEventStore:
    migrated = await PostgresEventStore.connect(dsn, min_size=1, max_size=2)  # applies the schema
    return PostgresEventStore(migrated.pool, registry=REGISTRY)


async def identity(store: PostgresEventStore) -> int:
    return int(await store.pool.fetchval("SELECT system_identifier FROM pg_control_system()"))


async def test_embedded_postgres_starts_migrates_appends_and_keeps_its_data(home: Path) -> None:
    dsn, handle = await start(home)
    try:
        assert (home / "pg" / "PG_VERSION").exists()
        store = await open_store(dsn)
        try:
            cluster = await identity(store)
            assert await store.pool.fetchval("SHOW server_version_num") >= "160000"
            written = [note("first"), note("second")]
            result = await store.for_tenant("default").append(
                "note-1", written, expected_version=NO_STREAM, metadata=meta()
            )
            assert (result.first_version, result.last_version) == (1, 2)
            assert [e.payload for e in await store.for_tenant("default").read_stream("note-1")] == [
                Noted(text="first"),
                Noted(text="second"),
            ]
            # The append-only triggers are there too: the embedded default is the same store, not a lookalike.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await store.pool.execute("DELETE FROM events")
        finally:
            await store.close()
    finally:
        await stop(handle)
    assert not (home / "pg" / "postmaster.pid").exists(), "the server did not stop with its last handle"

    dsn, handle = await start(home)
    try:
        store = await open_store(dsn)  # migrating again is harmless
        try:
            assert await identity(store) == cluster, "a second start created a new cluster instead of reusing it"
            tenant = store.for_tenant("default")
            assert [e.event_id for e in await tenant.read_stream("note-1")] == [e.event_id for e in written]
            more = await tenant.append("note-1", [note("third")], expected_version=2, metadata=meta())
            assert more.first_version == 3
        finally:
            await store.close()
    finally:
        await stop(handle)


async def test_a_second_process_shares_the_running_embedded_server(home: Path) -> None:
    """`lockgate serve` and `lockgate worker ...` on one machine: the second start joins the running server."""
    dsn, handle = await start(home)
    try:
        store = await open_store(dsn)
        try:
            await store.for_tenant("default").append("note-1", [note("shared")], expected_version=0, metadata=meta())
            pid = await store.pool.fetchval("SELECT pg_backend_pid()")
            assert pid
            script = textwrap.dedent(
                f"""
                import asyncio, json, sys
                import asyncpg
                from pathlib import Path
                from services.shared.embedded import start_embedded_postgres

                async def main():
                    dsn, handle = start_embedded_postgres(Path({str(home)!r}))
                    conn = await asyncpg.connect(dsn)
                    row = await conn.fetchrow(
                        "SELECT count(*) AS n, pg_postmaster_start_time()::text AS t FROM events"
                    )
                    await conn.close()
                    print(json.dumps({{"dsn": dsn, "n": row["n"], "started": row["t"]}}))

                asyncio.run(main())
                """
            )
            proc = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", script],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                cwd=Path(__file__).resolve().parents[2],
            )
            assert proc.returncode == 0, proc.stderr
            seen = json.loads(proc.stdout.strip().splitlines()[-1])
            assert seen["dsn"] == dsn
            assert seen["n"] == 1
            assert seen["started"] == await store.pool.fetchval("SELECT pg_postmaster_start_time()::text")
            # The other process exiting did not stop the server this process still uses.
            assert await store.pool.fetchval("SELECT count(*) FROM events") == 1
        finally:
            await store.close()
    finally:
        await stop(handle)
