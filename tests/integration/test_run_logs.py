"""Run logs on the real PostgreSQL (and NATS, and the local object store): a writer and followers in one test
see the lines in order and live, resume from a line number, end at the final line; a later attempt continues
the numbering; big bursts flush at once; the stored log round-trips through gzip with its hash."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from contracts.api.runs import LogLine
from services.runner import logs
from services.runner.logs import LiveLog, follow, read_lines, read_stored_lines, store_log
from services.shared.bus.nats import connect_nats
from services.shared.objectstore.local import LocalObjectStore

pytestmark = pytest.mark.timeout(60)

TENANT = "acme"


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=6)
    try:
        yield pool
    finally:
        await pool.close()


class RunEnd:
    """What ``finished`` reports: None until ``end(lines)``."""

    def __init__(self) -> None:
        self.final: int | None = None
        self.asked = 0

    async def __call__(self) -> int | None:
        self.asked += 1
        return self.final


async def collect(stream: AsyncIterator[LogLine]) -> list[LogLine]:
    return [line async for line in stream]


async def test_a_follower_sees_lines_live_in_order_and_ends_with_the_run(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "POLL_SECONDS", 30.0)  # only the notifications can wake the follower in time
    run_id, end = uuid.uuid4(), RunEnd()
    seen: list[tuple[LogLine, float]] = []

    async def follower() -> None:
        async for line in follow(pool, TENANT, run_id, 0, finished=end):
            seen.append((line, time.monotonic()))

    following = asyncio.create_task(follower())
    other_run = LiveLog(pool, TENANT, uuid.uuid4())  # its lines and notices must not reach this follower
    live = LiveLog(pool, TENANT, run_id)
    written: dict[int, float] = {}
    for i in range(1, 41):
        other_run.add(f"other {i}")
        written[live.add(f"line {i}")] = time.monotonic()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert [line.line for line, _ in seen] == list(range(1, 41))  # delivered while the run still runs
    assert not following.done()
    latencies = sorted(at - written[line.line] for line, at in seen)
    assert latencies[len(latencies) // 2] < 0.15, latencies  # 50 ms batches + a notification

    end.final = 41  # the run's end is recorded by the time the follower wakes for its last line
    live.add("last words")
    await live.close()
    await other_run.close()
    await asyncio.wait_for(following, 5)
    assert [line.text for line, _ in seen] == [*(f"line {i}" for i in range(1, 41)), "last words"]
    assert live.lines == 41


async def test_resume_from_a_line_and_a_run_that_already_ended(pool: asyncpg.Pool) -> None:
    run_id = uuid.uuid4()
    async with LiveLog(pool, TENANT, run_id) as live:
        for i in range(1, 1201):  # more than one follower page (1000) and more than one flush batch (500)
            live.add(f"line {i}")
    end = RunEnd()
    end.final = 1200
    resumed = await collect(follow(pool, TENANT, run_id, 997, finished=end))
    assert [line.line for line in resumed] == list(range(998, 1201))
    assert resumed[0].text == "line 998"
    assert await collect(follow(pool, TENANT, run_id, 1200, finished=end)) == []
    page = await read_lines(pool, TENANT, run_id, 10, 3)
    assert page == [
        LogLine(line=11, text="line 11"),
        LogLine(line=12, text="line 12"),
        LogLine(line=13, text="line 13"),
    ]
    assert await read_lines(pool, "globex", run_id, 0, 10) == []  # another tenant's run of the same id


async def test_a_waiting_follower_notices_the_end_of_the_run_by_polling(pool: asyncpg.Pool) -> None:
    run_id, end = uuid.uuid4(), RunEnd()
    async with LiveLog(pool, TENANT, run_id) as live:
        live.add("only line")
    following = asyncio.create_task(collect(follow(pool, TENANT, run_id, 0, finished=end)))
    await asyncio.sleep(0.3)
    assert not following.done()
    end.final = 1
    started = time.monotonic()
    assert [line.text for line in await asyncio.wait_for(following, 2)] == ["only line"]
    assert time.monotonic() - started < logs.POLL_SECONDS + 0.2


async def test_a_follower_stops_when_asked(pool: asyncpg.Pool) -> None:
    stop = asyncio.Event()
    following = asyncio.create_task(collect(follow(pool, TENANT, uuid.uuid4(), 0, finished=RunEnd(), stop=stop)))
    await asyncio.sleep(0.1)
    stop.set()
    assert await asyncio.wait_for(following, 2) == []


async def test_a_later_attempt_continues_the_numbering(pool: asyncpg.Pool) -> None:
    run_id = uuid.uuid4()
    async with LiveLog(pool, TENANT, run_id) as first:
        first.add("attempt 1")
        first.add("runner lost")
    second = await LiveLog.resume(pool, TENANT, run_id)
    assert second.lines == 2
    assert second.add("attempt 2") == 3
    await second.close()
    end = RunEnd()
    end.final = 3
    texts = [line.text for line in await collect(follow(pool, TENANT, run_id, 0, finished=end))]
    assert texts == ["attempt 1", "runner lost", "attempt 2"]
    with pytest.raises(RuntimeError, match="closed"):
        second.add("too late")


async def test_a_burst_is_written_without_waiting_for_the_timer(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "FLUSH_SECONDS", 30.0)  # only the size trigger can write within the test
    run_id = uuid.uuid4()
    live = LiveLog(pool, TENANT, run_id)
    for i in range(logs.FLUSH_LINES):
        live.add(f"burst {i}")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(await read_lines(pool, TENANT, run_id, 0, 1000)) == logs.FLUSH_LINES:
            break
    assert len(await read_lines(pool, TENANT, run_id, 0, 1000)) == logs.FLUSH_LINES
    live.add("tail")
    await live.close()
    assert (await read_lines(pool, TENANT, run_id, logs.FLUSH_LINES, 10))[0].text == "tail"


async def test_lines_are_published_on_the_runs_nats_subject(
    pool: asyncpg.Pool, nats_url: str, nats_names: tuple[str, str]
) -> None:
    _, prefix = nats_names
    run_id = uuid.uuid4()
    nc = await connect_nats(nats_url)
    try:
        subscription = await nc.subscribe(logs.log_subject(prefix, TENANT, run_id))
        await nc.flush()
        async with LiveLog(pool, TENANT, run_id, nats=nc, subject_prefix=prefix) as live:
            for i in range(1, 6):
                live.add(f"line {i} ✓")
        received: list[dict[str, object]] = []
        while len(received) < 5:
            message = await subscription.next_msg(timeout=2)
            received.extend(json.loads(message.data))
        assert received == [{"line": i, "text": f"line {i} ✓"} for i in range(1, 6)]
        assert subscription.subject == f"{prefix}_logs.{TENANT}.{run_id}"
    finally:
        await nc.close()


async def test_the_stored_log_round_trips_with_its_hash(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path / "objects").for_tenant(TENANT)
    lines = [f'{{"msg": "line {i}"}}' for i in range(1, 2001)]
    artifact = await store_log(objects, uuid.uuid4(), lines)
    data = await objects.get(artifact.key)
    assert artifact.name == "dbt.log.gz"
    assert (artifact.size, artifact.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert gzip.decompress(data).decode().splitlines() == lines
    assert artifact.key.startswith(f"{TENANT}/run_log/")
    again = await store_log(objects, uuid.uuid4(), lines)
    assert again.key == artifact.key  # the same lines are the same bytes (no timestamp in the gzip header)
    page = await read_stored_lines(objects, artifact, 1998, 10)
    assert page == [LogLine(line=1999, text=lines[1998]), LogLine(line=2000, text=lines[1999])]
    empty = await store_log(objects, uuid.uuid4(), [])
    assert await read_stored_lines(objects, empty, 0, 10) == []
