"""``LocalRuntime``: dbt as a child process of the worker, in per-run cgroups, sandboxed by bubblewrap.

- **Limits.** The child enters its run's cgroups (``isolation.cgroups``) before exec, so everything it and its
  children allocate counts. Without writable cgroups (a laptop without root) the memory limit falls back to
  ``RLIMIT_AS`` with a warning: that only makes allocations fail (Python raises ``MemoryError``), nothing is
  killed and ``oom_killed`` stays False; cpu and pids limits are then not enforced at all.
- **Filesystem.** With ``bwrap`` installed the process sees the host read-only, a private ``/tmp`` and
  ``/proc``, a minimal ``/dev``, and writes only to the ``writable`` paths; it keeps the host's network
  (loopback warehouses, Snowflake) and dies with the worker (``--die-with-parent``).
- **Signals.** The child leads a new session, so ``kill`` reaches the whole process group. ``interrupt`` sends
  SIGINT to the group *except bwrap's outer process*: bwrap does not forward signals and dies of SIGINT at
  once, and ``--die-with-parent`` would then SIGKILL dbt before it cancelled its warehouse queries. bwrap's
  pid-namespace init ignores SIGINT (an init only receives signals it handles), dbt gets it, and bwrap exits
  with dbt's status (128 + signal when dbt is killed, e.g. 137 by the OOM killer).
- **Output.** stdout and stderr share one pipe, read in chunks and split into lines of any length (dbt's
  JSON log lines can exceed asyncio's 64 KiB ``readline`` limit).

The process is waited for through a pidfd rather than asyncio's subprocess transport, which in Python 3.11
only reports the exit once every holder of the pipe has closed it (a stray grandchild would block ``wait``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shutil
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

from services.runner.isolation.cgroups import CgroupHost, RunCgroup
from services.runner.ports import Exit, Limits

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 64 * 1024

DETECT: Final = "detect"


def _usable_bwrap() -> str | None:
    """``bwrap`` on PATH, if it can make the sandbox here: where unprivileged user namespaces are off, it is
    installed but every sandboxed run would fail, so dbt runs unsandboxed (with a warning) instead."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = [found, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--share-net", "true"]
    try:
        works = subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0  # noqa: S603 - a fixed argv
    except (OSError, subprocess.TimeoutExpired):
        works = False
    if not works:
        log.warning("bubblewrap is installed but cannot make a sandbox here (user namespaces off?)")
        return None
    return found


class LocalRuntime:
    """Starts processes on this machine under cgroup limits and, where bubblewrap exists, a read-only sandbox.

    ``cgroups``: a ``CgroupHost`` (e.g. with a test's own parent directory), None for none, or ``"detect"``
    (``CgroupHost.detect()``). ``bwrap``: the bubblewrap binary, None for no sandbox, or ``"detect"`` (the
    ``bwrap`` on PATH if any)."""

    def __init__(
        self,
        *,
        cgroups: CgroupHost | Literal["detect"] | None = DETECT,
        bwrap: str | Literal["detect"] | None = DETECT,
    ) -> None:
        self.cgroups = CgroupHost.detect() if cgroups == DETECT else cgroups
        self.bwrap = _usable_bwrap() if bwrap == DETECT else bwrap
        if self.cgroups is None:
            log.warning("no writable cgroups: memory limits fall back to RLIMIT_AS, which does not kill")
        if self.bwrap is None:
            log.warning("bubblewrap (bwrap) not found: dbt runs without filesystem isolation")

    @property
    def name(self) -> str:
        return "local"

    async def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        limits: Limits,
        writable: Sequence[Path] = (),
    ) -> LocalExecution:
        if not argv:
            raise ValueError("argv must name a program")
        command = list(argv)
        if self.bwrap is not None:
            command = [*_sandbox(self.bwrap, cwd, writable), *command]
        cgroup = self._cgroup_for(limits)
        try:
            proc = await asyncio.to_thread(
                subprocess.Popen,
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_before_exec(cgroup, self._rlimits(limits, cgroup)),
            )
        except BaseException:
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            raise
        return await LocalExecution.attach(proc, cgroup=cgroup, sandboxed=self.bwrap is not None)

    def _cgroup_for(self, limits: Limits) -> RunCgroup | None:
        if self.cgroups is None:
            return None
        missing = [
            controller
            for controller, limit in (("memory", limits.memory_bytes), ("cpu", limits.cpus), ("pids", limits.pids))
            if limit is not None and controller not in self.cgroups.controllers
        ]
        if missing:
            log.warning("cgroup controllers %s are not writable here: those limits are not enforced", missing)
        return self.cgroups.create(f"run-{uuid.uuid4().hex[:16]}", limits)

    def _rlimits(self, limits: Limits, cgroup: RunCgroup | None) -> dict[int, int]:
        if limits.memory_bytes is None or (cgroup is not None and "memory" in cgroup.paths):
            return {}
        log.warning("memory limit enforced by RLIMIT_AS only: allocations beyond it fail, nothing is killed")
        return {resource.RLIMIT_AS: limits.memory_bytes}


def _sandbox(bwrap: str, cwd: Path, writable: Sequence[Path]) -> list[str]:
    """The bubblewrap command up to ``--``: the host read-only, a private /tmp, ``writable`` bound read-write."""
    writable = [path.resolve() for path in writable]
    cwd = cwd.resolve()
    for path in (cwd, *writable):
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a directory (cwd and writable paths must exist)")
    command = [bwrap, "--die-with-parent", "--unshare-all", "--share-net", "--ro-bind", "/", "/"]
    command += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]  # noqa: S108 - a private, empty /tmp
    for path in writable:
        command += ["--bind", str(path), str(path)]
    if not any(cwd.is_relative_to(path) for path in writable):
        # The private /tmp would hide a working directory under /tmp; bring it back, read-only.
        command += ["--ro-bind", str(cwd), str(cwd)]
    return [*command, "--chdir", str(cwd), "--"]


def _before_exec(cgroup: RunCgroup | None, rlimits: Mapping[int, int]) -> Callable[[], None]:
    """What the child does between fork and exec: enter the cgroups, set the rlimits (no logging here)."""

    def prepare() -> None:
        if cgroup is not None:
            cgroup.enter()
        for kind, value in rlimits.items():
            resource.setrlimit(kind, (value, value))

    return prepare


class LocalExecution:
    """One process started by ``LocalRuntime``. ``lines`` may be iterated once; ``wait`` may be awaited by many."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        *,
        cgroup: RunCgroup | None,
        sandboxed: bool,
    ) -> None:
        self._proc = proc
        self._reader = reader
        self._cgroup = cgroup
        self._sandboxed = sandboxed
        self._ending: asyncio.Task[Exit] | None = None

    @classmethod
    async def attach(
        cls, proc: subprocess.Popen[bytes], *, cgroup: RunCgroup | None, sandboxed: bool
    ) -> LocalExecution:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=CHUNK_BYTES)
        if proc.stdout is None:
            raise ValueError("the process must have been started with stdout=PIPE")
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), proc.stdout)
        return cls(proc, reader, cgroup=cgroup, sandboxed=sandboxed)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def cgroup(self) -> RunCgroup | None:
        return self._cgroup

    async def lines(self) -> AsyncIterator[bytes]:
        async for line in split_lines(self._reader):
            yield line

    async def interrupt(self) -> None:
        if self._sandboxed:
            for pid in _group_members(self._proc.pid):
                if pid != self._proc.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGINT)
        else:
            _signal_group(self._proc.pid, signal.SIGINT)

    async def kill(self) -> None:
        _signal_group(self._proc.pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill_all()

    async def wait(self) -> Exit:
        if self._ending is None:
            self._ending = asyncio.create_task(self._end())
        return await asyncio.shield(self._ending)

    async def _end(self) -> Exit:
        returncode = await _exited(self._proc)
        # Whatever the process left running in its group (or cgroup) holds the pipe and the cgroup: end it.
        _signal_group(self._proc.pid, signal.SIGKILL)
        if self._cgroup is None:
            return Exit(returncode=returncode)
        cgroup = self._cgroup
        oom_killed, peak = cgroup.oom_killed(), cgroup.peak_memory()
        await asyncio.to_thread(cgroup.remove)
        return Exit(returncode=returncode, oom_killed=oom_killed, peak_memory_bytes=peak)


async def split_lines(reader: asyncio.StreamReader, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The reader's lines without their newline, of any length; a last line without newline is yielded too."""
    parts: list[bytes] = []
    while chunk := await reader.read(chunk_bytes):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start:end])
            yield b"".join(parts)
            parts.clear()
            start = end + 1
        if start < len(chunk):
            parts.append(chunk[start:])
    if parts:
        yield b"".join(parts)


async def _exited(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the exit without blocking the loop (a pidfd becomes readable when the process ends)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return await asyncio.to_thread(proc.wait)
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def mark_ended() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(pidfd, mark_ended)
    try:
        await ended
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return proc.wait()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` (a scan of /proc: Linux has no call that lists a group)."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
    return members
