"""Fixtures shared by all tests: a private database per test (cloned from a migrated template) and
unique NATS names, on the real servers of this machine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.shared.eventstore.postgres import PostgresEventStore
from tests.s3 import moto_s3
from tests.services import NATS_URL, PG_ADMIN_URL, RUN_ID, missing_service, port_open

PG_HOW = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
NATS_HOW = "nats-server -a 127.0.0.1 -p 4222 -js (or: bash .ci/run)"


def database_url(name: str) -> str:
    parts = urlsplit(PG_ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database with the event-store schema applied, cloned by every test that needs one."""
    host = urlsplit(PG_ADMIN_URL)
    if not port_open(host.hostname or "127.0.0.1", host.port or 5432):
        missing_service("PostgreSQL", PG_HOW)
    name = f"lgtest_{RUN_ID}_template"

    async def create() -> None:
        await _admin(f'CREATE DATABASE "{name}"')
        store = await PostgresEventStore.connect(database_url(name))
        await store.close()

    asyncio.run(create())
    yield name
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_url(pg_template: str) -> AsyncIterator[str]:
    """A private, migrated database for one test; dropped afterwards."""
    name = f"lgtest_{RUN_ID}_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield database_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    store = await PostgresEventStore.connect(pg_url, migrate=False)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def nats_url() -> str:
    """The shared NATS server; tests must use `nats_names` for anything they create on it."""
    host = urlsplit(NATS_URL)
    if not port_open(host.hostname or "127.0.0.1", host.port or 4222):
        missing_service("NATS JetStream", NATS_HOW)
    return NATS_URL


@pytest.fixture
def nats_names() -> tuple[str, str]:
    """A JetStream stream name and subject prefix that only this test uses."""
    suffix = uuid.uuid4().hex[:10]
    return f"LGTEST_{RUN_ID}_{suffix}".upper(), f"lgtest{RUN_ID}{suffix}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``host:port`` of an S3 server (moto, in process, plain HTTP) shared by the session; tests must use
    their own bucket names (moto keeps everything in memory and forgets it when the session ends)."""
    with moto_s3() as endpoint:
        yield endpoint


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run last. Playwright's sync API (pytest-playwright) keeps an event loop running on the
    main thread from its first test to the end of the session, and every asyncio test collected after it would
    fail with "This event loop is already running"."""
    e2e = Path(__file__).parent / "e2e"
    items.sort(key=lambda item: item.path.is_relative_to(e2e))
