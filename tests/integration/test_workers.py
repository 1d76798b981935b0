"""``lockgate worker relay`` and ``lockgate worker projector`` as real processes in distributed mode:
commands through the CLI land in the store, the relay publishes them to JetStream, and the projector
worker consumes them there with its durable consumer; both stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import nats

LOCKGATE = str(Path(sys.executable).parent / "lockgate")


def environment(pg_url: str, nats_url: str, stream: str, prefix: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env.update({
        "LOCKGATE_DATABASE_URL": pg_url, "LOCKGATE_NATS_URL": nats_url, "LOCKGATE_NATS_STREAM": stream,
        "LOCKGATE_NATS_SUBJECT_PREFIX": prefix, "LOCKGATE_HOME": str(home), "LOCKGATE_LOG_JSON": "true",
    })  # fmt: skip
    return env


async def test_relay_and_projector_workers_carry_cli_commands_through_jetstream(
    pg_url: str, nats_url: str, nats_names: tuple[str, str], tmp_path: Path
) -> None:
    stream, prefix = nats_names
    env = environment(pg_url, nats_url, stream, prefix, tmp_path)
    logs = {kind: tmp_path / f"{kind}.log" for kind in ("relay", "projector")}
    processes = {}
    for kind, log in logs.items():
        with log.open("w") as sink:
            processes[kind] = subprocess.Popen([LOCKGATE, "worker", kind], env=env, stderr=sink)
    relay, projector = processes["relay"], processes["projector"]
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        for project in ("shop", "finance"):
            created = subprocess.run(
                [LOCKGATE, "project", "create", project, "--repo", f"/srv/dbt/{project}", "--json"],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
        stored = await count_events(pg_url)
        assert stored == 4  # the default tenant and org (bootstrap), then two projects

        info = consumer = None
        async with asyncio.timeout(60):
            while True:
                try:
                    info = await js.stream_info(stream)
                    consumer = await js.consumer_info(stream, "tenancy")
                except nats.js.errors.NotFoundError:
                    await asyncio.sleep(0.1)
                    continue
                if info.state.messages == stored and consumer.ack_floor.stream_seq == stored:
                    break
                await asyncio.sleep(0.1)
        assert consumer is not None
        subjects = {m.subject for m in [await js.get_msg(stream, seq) for seq in range(1, stored + 1)]}
        assert f"{prefix}.default.tenancy.project_created" in subjects
        assert consumer.num_pending == 0
    finally:
        for process in (relay, projector):
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in (relay, projector)]
        await js.delete_stream(stream)
        await nc.close()
    assert codes == [0, 0], [log.read_text() for log in logs.values()]


async def count_events(pg_url: str) -> int:
    import asyncpg  # noqa: PLC0415

    conn = await asyncpg.connect(pg_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()
