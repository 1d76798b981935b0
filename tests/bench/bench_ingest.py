"""Ingestion end to end on the corpus' large manifests, against the decoders a reader of the same file would use.

Workloads, per project (GitLab 44 MB, Spellbook 72 MB), each on PostgreSQL with the graph read model updated
(``Ingestion.ingest`` then the graph projection caught up, on the machine's shared PostgreSQL):

- ``first``: the first ingestion of the manifest into a fresh database (decode, normalise, identities, diff,
  snapshot and code objects, every node event appended, read model written);
- ``unchanged``: the same manifest again (hash, compare with the last ingestion: nothing appended);
- ``one change``: the corpus' ``state_modified`` manifest (one model's SQL edited) after the base one.

Anchors, measured in the same run on the same bytes: a typed msgspec decode into minimal Structs (what
ANCHORS.md calls ``msgspec_struct_min``) and ``dbt_artifacts_parser.parser.parse_manifest`` on the decoded dict
(plus the decode). Peak memory of a first ingestion is measured in a child process (``ru_maxrss`` after the
ingestion minus before it, from ``VmHWM``) and reported as a multiple of the manifest's size.

Goals (issue 3): GitLab first ingest <= 1 s, Spellbook <= 2 s; unchanged <= 0.3 s; one change <= 0.5 s;
peak memory <= 3x the manifest. ``LOCKGATE_BENCH_INGEST_ROUNDS`` (default 3) scales the run;
``LOCKGATE_BENCH_ENFORCE=1`` turns the goals into assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from contracts.commands.tenancy import CreateProject
from contracts.envelope import Actor
from services.bootstrap import ensure_tenant
from services.ingestion.readmodel import GraphReadModel
from services.ingestion.service import Ingestion
from services.shared.commands import CommandContext
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.objectstore.local import LocalObjectStore
from services.tenancy import handlers
from tests.bench.conftest import machine, markdown_table, now_utc, update_readme_section
from tests.conftest import _admin, database_url
from tests.corpus import corpus_file

pytestmark = pytest.mark.bench

ROUNDS = int(os.environ.get("LOCKGATE_BENCH_INGEST_ROUNDS", "3"))
ENFORCE = os.environ.get("LOCKGATE_BENCH_ENFORCE") == "1"
COMMAND = "make bench  (this benchmark alone: .venv/bin/pytest tests/bench -m bench -p no:randomly -s -k ingest)"
PROJECTS = {
    "GitLab": ("gitlab_snowflake", "manifest.json"),
    "Spellbook": ("spellbook_hourly", "manifest.json.gz"),
}
GOALS: dict[str, dict[str, float]] = {
    "first": {"GitLab": 1.0, "Spellbook": 2.0},
    "unchanged": {"GitLab": 0.3, "Spellbook": 0.3},
    "one change": {"GitLab": 0.5, "Spellbook": 0.5},
}


# -- the typed-decode anchor (ANCHORS.md's msgspec_struct_min) ------------------------------------


class _Checksum(msgspec.Struct):
    name: str = ""
    checksum: str = ""


class _DependsOn(msgspec.Struct):
    nodes: list[str] = []


class _Node(msgspec.Struct):
    unique_id: str
    resource_type: str
    package_name: str = ""
    original_file_path: str = ""
    checksum: _Checksum | str | None = None
    depends_on: _DependsOn | None = None
    config: dict[str, Any] = {}


class _Source(msgspec.Struct):
    unique_id: str


class _MiniManifest(msgspec.Struct):
    metadata: dict[str, Any]
    nodes: dict[str, _Node]
    sources: dict[str, _Source] = {}
    parent_map: dict[str, list[str]] = {}
    child_map: dict[str, list[str]] = {}


_mini = msgspec.json.Decoder(_MiniManifest)


# -- one ingestion on a fresh database ---------------------------------------------------------------


class _Bench:
    def __init__(self, template: str, folder: Path) -> None:
        self.template = template
        self.folder = folder

    async def fresh(self) -> tuple[str, PostgresEventStore]:
        name = f"lgbench_ingest_{uuid.uuid4().hex[:10]}"
        await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        store = await PostgresEventStore.connect(database_url(name), migrate=False)
        await ensure_tenant(store, "bench", "Bench", org_id="o", org_name="O")
        await handlers.handle_create_project(
            store.for_tenant("bench"),
            CreateProject(project_id="p", org_id="o", name="P", repository="/srv/p"),
            _ctx(),
        )
        return name, store

    async def timed_ingest(self, ingestion: Ingestion, store: PostgresEventStore, manifest: Path) -> float:
        objects = LocalObjectStore(self.folder / "objects").for_tenant("bench")
        model = GraphReadModel(store)
        started = time.perf_counter()
        await ingestion.ingest(store.for_tenant("bench"), objects, "p", {"manifest": manifest}, _ctx())
        await model.catch_up(within=120)
        return time.perf_counter() - started


def _ctx() -> CommandContext:
    return CommandContext(actor=Actor(subject="bench"), correlation_id=uuid.uuid4())


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


async def _round(bench: _Bench, base: Path, edited: Path) -> dict[str, float]:
    from dbt_artifacts_parser.parser import parse_manifest  # noqa: PLC0415 - 2 s of imports, only here

    times: dict[str, float] = {}
    data = base.read_bytes()
    times["typed decode"] = _timed(lambda: _mini.decode(data))
    times["dbt-artifacts-parser"] = _timed(lambda: parse_manifest(msgspec.json.decode(data)))
    name, store = await bench.fresh()
    try:
        ingestion = Ingestion()
        times["first"] = await bench.timed_ingest(ingestion, store, base)
        times["unchanged"] = await bench.timed_ingest(ingestion, store, base)
        times["one change"] = await bench.timed_ingest(ingestion, store, edited)
    finally:
        await store.close()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return times


_CHILD = """
import asyncio, json, re, sys, uuid
from pathlib import Path
from tests.bench.bench_ingest import _Bench, Ingestion
from tests.conftest import _admin

def hwm_kib():
    # VmHWM belongs to this exec's address space; ru_maxrss would carry the forking parent's peak over exec.
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))

async def main():
    bench = _Bench(sys.argv[1], Path(sys.argv[2]))
    name, store = await bench.fresh()
    try:
        before = hwm_kib()
        seconds = await bench.timed_ingest(Ingestion(), store, Path(sys.argv[3]))
        after = hwm_kib()
    finally:
        await store.close()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps({"before_kib": before, "after_kib": after, "seconds": seconds}))

asyncio.run(main())
"""


def _peak_memory(template: str, folder: Path, manifest: Path) -> tuple[float, int, int]:
    """Growth of the process's peak RSS over one first ingestion, as a multiple of the manifest's size, and
    the peak RSS (KiB) before and after."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, template, str(folder), str(manifest)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    before, after = int(report["before_kib"]), int(report["after_kib"])
    return (after - before) * 1024 / manifest.stat().st_size, before, after


def _cell(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0] * 1000:,.0f} / **{statistics.median(ordered) * 1000:,.0f}** / {ordered[-1] * 1000:,.0f}"


def test_ingest_benchmark(pg_template: str, tmp_path: Path) -> None:
    bench = _Bench(pg_template, tmp_path)
    rows: list[list[str]] = []
    verdicts: list[str] = []
    memory: list[str] = []
    for project, (folder, name) in PROJECTS.items():
        base = corpus_file(tmp_path, folder, name)
        edited = corpus_file(tmp_path, folder, "state_modified", "manifest.edited.json.gz")
        rounds = [asyncio.run(_round(bench, base, edited)) for _ in range(ROUNDS)]
        med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        size_mb = base.stat().st_size / 1e6
        for key in ("first", "unchanged", "one change"):
            goal = GOALS[key][project]
            met = "met" if med[key] <= goal else "NOT met"
            rows.append(
                [
                    f"{project} ({size_mb:.0f} MB): {key}",
                    _cell([r[key] for r in rounds]),
                    f"{med[key] / med['typed decode']:.1f}x",
                    f"{med[key] / med['dbt-artifacts-parser']:.2f}x",
                    f"<= {goal * 1000:,.0f} ms: **{met}**",
                ]
            )
            verdicts.append(f"{project} {key} {met}")
        for key in ("typed decode", "dbt-artifacts-parser"):
            rows.append([f"{project}: anchor {key}", _cell([r[key] for r in rounds]), "", "", ""])
        ratio, before, after = _peak_memory(pg_template, tmp_path, base)
        met = "met" if ratio <= 3 else "NOT met"
        verdicts.append(f"{project} memory {met}")
        memory.append(
            f"{project}: **{ratio:.2f}x** the manifest "
            f"(peak RSS {before / 1024:,.0f} -> {after / 1024:,.0f} MiB; {met})"
        )

    table = markdown_table(
        ["workload (end to end, read model updated)", "ms (min / **median** / max)", "vs typed decode",
         "vs dbt-artifacts-parser", "goal"],
        rows,
    )  # fmt: skip
    body = f"""
Measured {now_utc()} on {machine()}; PostgreSQL: the machine's shared server; object store: local files.
{ROUNDS} rounds; the anchors run in the same rounds on the same bytes.

Command: `{COMMAND}`

{table}

Peak memory of a first ingestion (growth of the peak RSS of a child process that runs one): {"; ".join(memory)}.

"vs typed decode" is how many typed decodes of the same file the whole ingestion costs; "vs dbt-artifacts-parser"
below 1 means the whole ingestion (decode, normalise, diff, events appended, read model written) is faster than
that parser alone.
"""
    update_readme_section("Ingest", body)
    print(body)  # noqa: T201 - make bench prints its figures
    if ENFORCE:
        missed = [v for v in verdicts if v.endswith("NOT met")]
        assert not missed, missed
