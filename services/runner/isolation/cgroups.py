"""Per-run cgroups written directly in the cgroup filesystem, for cgroup v1 and v2 (FEASIBILITY.md §4).

The memory limit that really kills a process is the cgroup's (rlimits only make allocations fail), so the local
runtime puts every dbt process into cgroups of its own:

- **v1** (this machine: one hierarchy per controller): ``<root>/<controller>/<parent>/<name>`` for each of
  ``memory`` (``memory.limit_in_bytes``, plus ``memory.memsw.limit_in_bytes`` when swap is accounted, so the
  limit cannot be dodged by swapping), ``cpu`` (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``) and ``pids``
  (``pids.max``).
- **v2** (one unified hierarchy): ``<root>/<parent>/<name>`` with ``memory.max``, ``memory.swap.max``,
  ``cpu.max`` and ``pids.max``. ``root`` must be a subtree delegated to us (the mount point when we are root,
  a systemd ``Delegate=yes`` unit's cgroup otherwise); the controllers are enabled in ``cgroup.subtree_control``
  on the way down.

``CgroupHost.detect`` finds out which controllers exist and are writable (it creates ``<parent>`` to find out);
``CgroupHost.create`` makes a run's cgroup(s); ``RunCgroup.enter`` moves a process in (from the child itself,
before exec, so nothing it allocates escapes the limit); after the process ends ``oom_killed``, ``peak_memory``
and ``remove`` (which kills stragglers first: a cgroup with processes cannot be removed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from services.runner.ports import Limits

log = logging.getLogger(__name__)

DEFAULT_ROOT: Final = Path("/sys/fs/cgroup")
DEFAULT_PARENT: Final = "lockgate"
CONTROLLERS: Final = ("memory", "cpu", "pids")
CPU_PERIOD_US: Final = 100_000
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_V1_MARKER: Final = {"memory": "memory.limit_in_bytes", "cpu": "cpu.cfs_quota_us", "pids": "cgroup.procs"}
"""A file that the controller's v1 hierarchy root holds (the root cgroup has no ``pids.max``)."""
_REMOVE_TIMEOUT_S: Final = 5.0

CgroupVersion = Literal[1, 2]


class CgroupError(OSError):
    """A run's cgroup could not be created, limited or removed."""


def safe_name(name: str) -> str:
    """``name`` if it is a single, harmless path component; raises ``ValueError`` otherwise."""
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"cgroup name {name!r} must be 1-128 letters, digits, '_', '.' or '-', not starting with one")
    return name


@dataclass(frozen=True)
class CgroupHost:
    """Where this process can create per-run cgroups, and with which controllers."""

    version: CgroupVersion
    root: Path
    """v1: the directory holding one mount per controller; v2: the delegated directory ``parent`` goes in."""
    parent: str
    controllers: frozenset[str]
    """The subset of ``CONTROLLERS`` that exists and is writable under ``parent``."""

    @classmethod
    def detect(cls, root: Path = DEFAULT_ROOT, parent: str = DEFAULT_PARENT) -> CgroupHost | None:
        """The cgroups usable under ``root`` (creating ``<parent>`` where missing), or None when none is.

        v2 is recognised by ``cgroup.controllers`` in ``root`` itself; otherwise each controller's v1 mount is
        tried. A controller whose ``<parent>`` directory cannot be created (not root, read-only mount) is
        left out."""
        safe_name(parent)
        if (root / "cgroup.controllers").is_file():
            return cls._detect_v2(root, parent)
        return cls._detect_v1(root, parent)

    @classmethod
    def _detect_v1(cls, root: Path, parent: str) -> CgroupHost | None:
        usable: set[str] = set()
        for controller in CONTROLLERS:
            mount = root / controller
            if not (mount / _V1_MARKER[controller]).is_file():
                continue
            try:
                (mount / parent).mkdir(exist_ok=True)
            except OSError as exc:
                log.debug("cgroup v1 controller %s is not writable: %s", controller, exc)
                continue
            if os.access(mount / parent / "cgroup.procs", os.W_OK):
                usable.add(controller)
        return cls(version=1, root=root, parent=parent, controllers=frozenset(usable)) if usable else None

    @classmethod
    def _detect_v2(cls, root: Path, parent: str) -> CgroupHost | None:
        available = set(_read(root / "cgroup.controllers").split()) & set(CONTROLLERS)
        base = root / parent
        try:
            _enable_controllers(root, available)
            base.mkdir(exist_ok=True)
            _enable_controllers(base, available)
        except OSError as exc:
            log.debug("cgroup v2 subtree %s is not writable: %s", base, exc)
            return None
        usable = _controller_names(_read(base / "cgroup.subtree_control")) & available
        if not os.access(base / "cgroup.procs", os.W_OK) and not usable:
            return None
        return cls(version=2, root=root, parent=parent, controllers=frozenset(usable))

    def create(self, name: str, limits: Limits) -> RunCgroup:
        """Make the run's cgroup(s) and write ``limits`` into them; removes what it made if a write fails.

        Only the controllers a limit needs are used on v1 (``memory`` is always used when available, for the
        peak and the OOM counter)."""
        safe_name(name)
        wanted = _wanted_controllers(limits) & self.controllers
        if self.version == 1:
            paths = {controller: self.root / controller / self.parent / name for controller in sorted(wanted)}
        else:
            paths = dict.fromkeys(sorted(wanted), self.root / self.parent / name)
            if not paths:
                paths = {"": self.root / self.parent / name}
        cgroup = RunCgroup(version=self.version, name=name, paths=paths)
        try:
            for path in dict.fromkeys(paths.values()):
                path.mkdir()
            cgroup.apply(limits)
        except OSError as exc:
            with contextlib.suppress(OSError):
                cgroup.remove()
            raise CgroupError(f"cannot set up cgroup {name!r} under {self.root}: {exc}") from exc
        return cgroup

    def leftovers(self) -> list[Path]:
        """Run cgroups still present under ``parent`` (e.g. of a runner that crashed)."""
        parents = (
            [self.root / c / self.parent for c in self.controllers] if self.version == 1 else [self.root / self.parent]
        )
        return sorted(path for parent in parents if parent.is_dir() for path in parent.iterdir() if path.is_dir())


def _wanted_controllers(limits: Limits) -> set[str]:
    wanted = {"memory"}
    if limits.cpus is not None:
        wanted.add("cpu")
    if limits.pids is not None:
        wanted.add("pids")
    return wanted


def _enable_controllers(directory: Path, controllers: set[str]) -> None:
    enabled = _controller_names(_read(directory / "cgroup.subtree_control"))
    missing = sorted(controllers - enabled)
    if missing:
        _write(directory / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))


def _controller_names(text: str) -> set[str]:
    """The kernel lists ``cgroup.subtree_control`` as ``cpu memory``; a plain-file stand-in keeps the ``+cpu``
    that was written, so a leading ``+`` is dropped."""
    return {word.removeprefix("+") for word in text.split()}


@dataclass
class RunCgroup:
    """One run's cgroup: one directory per controller on v1, one directory on v2."""

    version: CgroupVersion
    name: str
    paths: Mapping[str, Path]
    """Controller -> directory (on v2 every controller maps to the same directory)."""
    _procs_files: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        directories = dict.fromkeys(self.paths.values())
        self._procs_files = tuple(os.fsencode(d / "cgroup.procs") for d in directories)

    @property
    def directories(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(self.paths.values()))

    def apply(self, limits: Limits) -> None:
        """Write ``limits`` (None = unlimited) into the controllers this cgroup has."""
        memory = self.paths.get("memory")
        if memory is not None and limits.memory_bytes is not None:
            if self.version == 1:
                _write(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
                # memsw is memory + swap: equal to the limit means no swap at all; absent without swap accounting.
                _write_optional(memory / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            else:
                _write(memory / "memory.max", str(limits.memory_bytes))
                _write_optional(memory / "memory.swap.max", "0")
        cpu = self.paths.get("cpu")
        if cpu is not None and limits.cpus is not None:
            quota = max(1000, round(limits.cpus * CPU_PERIOD_US))
            if self.version == 1:
                _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(cpu / "cpu.cfs_quota_us", str(quota))
            else:
                _write(cpu / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        pids = self.paths.get("pids")
        if pids is not None and limits.pids is not None:
            _write(pids / "pids.max", str(limits.pids))

    def enter(self, pid: int | None = None) -> None:
        """Move ``pid`` (default: the calling process) into the cgroup(s).

        Safe in a ``preexec_fn`` (between fork and exec): only ``os.open``/``os.write``, no allocation-heavy
        Python and no logging."""
        data = str(os.getpid() if pid is None else pid).encode()
        for procs in self._procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def pids(self) -> set[int]:
        """The processes in the cgroup(s) now."""
        found: set[int] = set()
        for directory in self.directories:
            with contextlib.suppress(FileNotFoundError):
                found.update(int(pid) for pid in _read(directory / "cgroup.procs").split())
        return found

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup(s) (``cgroup.kill`` on v2 kernels that have it)."""
        for directory in self.directories:
            kill_file = directory / "cgroup.kill"
            if self.version == 2 and kill_file.is_file():
                with contextlib.suppress(OSError):
                    _write(kill_file, "1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def oom_killed(self) -> bool:
        """Whether the memory limit killed a process of this cgroup (the kernel's ``oom_kill`` counter)."""
        memory = self.paths.get("memory")
        if memory is None:
            return False
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        return _counters(_read(memory / name)).get("oom_kill", 0) > 0

    def peak_memory(self) -> int | None:
        """The most memory the cgroup used, in bytes; None when the kernel does not say (v2 before 5.19)."""
        memory = self.paths.get("memory")
        if memory is None:
            return None
        peak = memory / ("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak")
        try:
            return int(_read(peak).split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def remove(self, timeout: float = _REMOVE_TIMEOUT_S) -> None:
        """Kill what is left inside, then rmdir the cgroup(s). Raises ``CgroupError`` if one stays busy."""
        deadline = time.monotonic() + timeout
        for directory in self.directories:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise CgroupError(f"cannot remove cgroup {directory}: {exc}") from exc
                    self.kill_all()
                    time.sleep(0.01)


def _counters(text: str) -> dict[str, int]:
    """``key value`` lines (``memory.oom_control``, ``memory.events``) as a dict; other lines are skipped."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counters[parts[0]] = int(parts[1])
    return counters


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii")


def _write(path: Path, value: str) -> None:
    with path.open("w", encoding="ascii") as handle:
        handle.write(value)


def _write_optional(path: Path, value: str) -> None:
    """Write a file that some kernels do not have (swap accounting off)."""
    try:
        _write(path, value)
    except (FileNotFoundError, PermissionError) as exc:
        log.debug("optional cgroup file %s not written: %s", path, exc)
