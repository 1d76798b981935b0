"""The local worker runtime with real processes: cgroup limits that kill, bubblewrap's read-only host, signals
through the sandbox, supervision (cancel, grace, timeout) and a real ``dbt parse`` under limits.

The cgroup tests use their own parent cgroup (``lockgate-test-<id>``), check that every run's cgroup is gone
afterwards and remove the parent; they are skipped where cgroups are not writable (a laptop without root)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.demo.build import DEMO_PROJECT, PROFILE_NAME, write_profile
from services.runner.isolation.cgroups import CgroupHost
from services.runner.isolation.local import LocalExecution, LocalRuntime
from services.runner.ports import Limits
from services.runner.supervise import Supervised, supervise

MB = 1024 * 1024
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1", "LC_ALL": "C.UTF-8"}
BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not installed")


@pytest.fixture
def cgroups() -> Iterator[CgroupHost]:
    """Writable cgroups under a parent of this test's own; afterwards no run cgroup may be left in it."""
    host = CgroupHost.detect(parent=f"lockgate-test-{uuid.uuid4().hex[:10]}")
    if host is None:
        pytest.skip("cgroups are not writable here (needs root, or a delegated cgroup v2 subtree)")
    try:
        yield host
        assert host.leftovers() == [], "a run's cgroup was left behind"
    finally:
        for directory in _parent_dirs(host):
            directory.rmdir()


def _parent_dirs(host: CgroupHost) -> list[Path]:
    if host.version == 1:
        return [host.root / controller / host.parent for controller in host.controllers]
    return [host.root / host.parent]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


async def run(execution: LocalExecution, *, timeout_s: float = 60, grace_s: float = 5) -> tuple[Supervised, list[str]]:
    lines: list[str] = []

    async def keep(line: bytes) -> None:
        lines.append(line.decode())

    done = await supervise(execution, on_line=keep, cancel=asyncio.Event(), timeout=timeout_s, grace=grace_s)
    return done, lines


ALLOCATE = """
    import sys
    block = b"x" * ({mb} * 1024 * 1024)  # written, so resident
    print("allocated", len(block) // 1024 // 1024, flush=True)
"""


async def test_a_process_over_its_memory_limit_is_oom_killed(cgroups: CgroupHost, tmp_path: Path) -> None:
    runtime = LocalRuntime(cgroups=cgroups)
    execution = await runtime.start(
        python(ALLOCATE.format(mb=400)), cwd=tmp_path, env=ENV, limits=Limits(memory_bytes=100 * MB)
    )
    done, lines = await run(execution)
    assert done.exit.oom_killed
    assert done.exit.returncode in (-9, 137)  # 137: bwrap reports its child's SIGKILL as 128 + 9
    assert "allocated 400" not in lines
    assert done.exit.peak_memory_bytes is not None
    assert 80 * MB <= done.exit.peak_memory_bytes <= 100 * MB


async def test_a_process_under_its_memory_limit_passes_with_its_peak(cgroups: CgroupHost, tmp_path: Path) -> None:
    runtime = LocalRuntime(cgroups=cgroups)
    execution = await runtime.start(
        python(ALLOCATE.format(mb=400)), cwd=tmp_path, env=ENV, limits=Limits(memory_bytes=600 * MB)
    )
    done, lines = await run(execution)
    assert done.exit.returncode == 0
    assert not done.exit.oom_killed
    assert lines == ["allocated 400"]
    assert done.exit.peak_memory_bytes is not None
    assert 400 * MB <= done.exit.peak_memory_bytes <= 600 * MB


async def test_a_cpu_limit_of_half_a_core_halves_a_busy_loop(cgroups: CgroupHost, tmp_path: Path) -> None:
    busy = """
        import time
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            pass
        print(time.process_time(), flush=True)
    """
    runtime = LocalRuntime(cgroups=cgroups)
    execution = await runtime.start(python(busy), cwd=tmp_path, env=ENV, limits=Limits(cpus=0.5))
    done, lines = await run(execution)
    assert done.exit.returncode == 0
    cpu_seconds = float(lines[-1])
    assert 0.6 <= cpu_seconds <= 1.4, f"{cpu_seconds:.2f} s of CPU in 2 s at 0.5 cores"


async def test_a_pids_limit_stops_new_threads(cgroups: CgroupHost, tmp_path: Path) -> None:
    threads = """
        import threading, time
        started = 0
        try:
            for _ in range(50):
                threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
                started += 1
        except RuntimeError as exc:
            print("refused:", exc, flush=True)
        print(started, flush=True)
    """
    runtime = LocalRuntime(cgroups=cgroups)
    execution = await runtime.start(python(threads), cwd=tmp_path, env=ENV, limits=Limits(pids=20))
    done, lines = await run(execution)
    assert done.exit.returncode == 0
    assert any(line.startswith("refused: can't start new thread") for line in lines)
    assert 5 <= int(lines[-1]) < 20  # the interpreter and (under bwrap) bwrap's processes count too


@needs_bwrap
async def test_the_sandbox_writes_only_to_writable_paths_and_passes_exactly_env(tmp_path: Path) -> None:
    workspace, hidden = tmp_path / "workspace", tmp_path / "hidden"
    workspace.mkdir()
    hidden.mkdir()
    host_file = Path(__file__).parent / f"lg-sandbox-probe-{uuid.uuid4().hex}"  # the host outside /tmp: read-only
    private = Path("/tmp") / f"lg-sandbox-private-{uuid.uuid4().hex}"  # noqa: S108 - in the sandbox's own /tmp
    probe = f"""
        import os
        paths = ({str(workspace / "in.txt")!r}, {str(hidden / "out.txt")!r}, {str(host_file)!r}, {str(private)!r})
        for path in paths:
            try:
                open(path, "w").write("x")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, exc.strerror)
        print("env", ",".join(sorted(os.environ)))
    """
    runtime = LocalRuntime(cgroups=None)
    try:
        execution = await runtime.start(python(probe), cwd=workspace, env=ENV, limits=Limits(), writable=[workspace])
        done, lines = await run(execution)
        assert not host_file.exists()
    finally:
        host_file.unlink(missing_ok=True)
    assert done.exit.returncode == 0
    assert lines == [
        f"wrote {workspace / 'in.txt'}",
        f"refused {hidden / 'out.txt'} No such file or directory",  # the host's /tmp is not even visible
        f"refused {host_file} Read-only file system",
        f"wrote {private}",
        "env " + ",".join(sorted({*ENV, "PWD"})),  # bwrap sets PWD to the working directory
    ]
    assert (workspace / "in.txt").read_text() == "x"
    assert not (hidden / "out.txt").exists()
    assert not private.exists()


HANDLES_SIGINT = """
    import signal, sys, time
    def stop(*_):
        print("canceling queries", flush=True)
        time.sleep(0.3)
        print("canceled", flush=True)
        sys.exit(130)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    time.sleep(60)
"""

IGNORES_SIGINT = """
    import signal, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(60)
"""


async def cancel_when_ready(execution: LocalExecution, *, grace_s: float) -> tuple[Supervised, list[str]]:
    lines: list[str] = []
    cancel = asyncio.Event()

    async def keep(line: bytes) -> None:
        lines.append(line.decode())
        if line == b"ready":
            cancel.set()

    done = await supervise(execution, on_line=keep, cancel=cancel, timeout=60, grace=grace_s)
    return done, lines


@pytest.mark.parametrize("sandboxed", [True, False], ids=["bwrap", "plain"])
async def test_cancel_sends_sigint_and_the_process_ends_on_its_own(tmp_path: Path, sandboxed: bool) -> None:
    if sandboxed and BWRAP is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    runtime = LocalRuntime(cgroups=None, bwrap=BWRAP if sandboxed else None)
    execution = await runtime.start(python(HANDLES_SIGINT), cwd=tmp_path, env=ENV, limits=Limits())
    done, lines = await cancel_when_ready(execution, grace_s=10)
    assert done.canceled
    assert not done.killed
    assert not done.timed_out
    assert done.exit.returncode == 130
    assert lines == ["ready", "canceling queries", "canceled"]


async def test_a_process_that_ignores_sigint_is_killed_after_the_grace_period(
    cgroups: CgroupHost, tmp_path: Path
) -> None:
    runtime = LocalRuntime(cgroups=cgroups)
    execution = await runtime.start(python(IGNORES_SIGINT), cwd=tmp_path, env=ENV, limits=Limits())
    started = asyncio.get_running_loop().time()
    done, lines = await cancel_when_ready(execution, grace_s=1)
    assert done.canceled
    assert done.killed
    assert done.exit.returncode in (-9, 137)
    assert not done.exit.oom_killed
    assert lines == ["ready"]
    assert asyncio.get_running_loop().time() - started < 10


async def test_a_timeout_interrupts_the_process(tmp_path: Path) -> None:
    runtime = LocalRuntime(cgroups=None)
    execution = await runtime.start(python(HANDLES_SIGINT), cwd=tmp_path, env=ENV, limits=Limits())
    done, lines = await run(execution, timeout_s=1.0, grace_s=10)
    assert done.timed_out
    assert not done.canceled
    assert not done.killed
    assert done.exit.returncode == 130
    assert lines[-1] == "canceled"


async def test_long_lines_and_a_last_line_without_newline_arrive_whole(tmp_path: Path) -> None:
    chatty = """
        import sys
        sys.stdout.write("a" * 1_000_000 + "\\n")
        sys.stderr.write("from stderr\\n")
        sys.stderr.flush()
        sys.stdout.write("\\n" + "b" * 100_000)
    """
    runtime = LocalRuntime(cgroups=None)
    execution = await runtime.start(python(chatty), cwd=tmp_path, env=ENV, limits=Limits())
    done, lines = await run(execution)
    assert done.exit.returncode == 0
    assert [len(line) for line in lines] == [1_000_000, len("from stderr"), 0, 100_000]
    assert lines[1] == "from stderr"


async def test_without_cgroups_the_memory_limit_falls_back_to_rlimit_as(tmp_path: Path) -> None:
    runtime = LocalRuntime(cgroups=None, bwrap=None)
    execution = await runtime.start(
        python(ALLOCATE.format(mb=400)), cwd=tmp_path, env=ENV, limits=Limits(memory_bytes=200 * MB)
    )
    done, lines = await run(execution)
    assert done.exit.returncode == 1  # MemoryError: the allocation failed, nothing was killed
    assert not done.exit.oom_killed
    assert lines[-1] == "MemoryError"


async def test_dbt_parse_of_the_demo_project_runs_under_limits_in_the_sandbox(
    cgroups: CgroupHost, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    project = workspace / "project"
    shutil.copytree(DEMO_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    profile = write_profile(workspace / "profiles", duckdb_path=workspace / "demo.duckdb")
    argv = [str(Path(sys.executable).parent / "dbt"), "parse", "--log-format", "json", "--project-dir", str(project)]
    argv += ["--profiles-dir", str(profile.parent), "--profile", PROFILE_NAME]
    env = {**ENV, "HOME": str(workspace), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false"}
    runtime = LocalRuntime(cgroups=cgroups)
    execution = await runtime.start(
        argv, cwd=project, env=env, limits=Limits(memory_bytes=512 * MB, cpus=1.0, pids=256), writable=[workspace]
    )
    done, lines = await run(execution, timeout_s=180)
    assert done.exit.returncode == 0, "\n".join(lines[-20:])
    events = [json.loads(line) for line in lines]
    names = [event["info"]["name"] for event in events]
    assert names[0] == "MainReportVersion"
    assert "ParsePerfInfoPath" in names
    assert json.loads((project / "target" / "manifest.json").read_bytes())["nodes"]
    assert done.exit.peak_memory_bytes is not None
    assert 50 * MB < done.exit.peak_memory_bytes < 512 * MB
