"""Per-run cgroups against a fake cgroup filesystem: plain files in a tmp dir standing for the kernel's.

This machine has cgroup v1, so the v2 code is only exercised here; the real v1 (and the kill-on-limit
behaviour of both) is tested with real processes in tests/integration/test_runner_isolation.py. A plain-file
stand-in differs from the kernel in two ways the tests handle themselves: files appear only when written, and a
directory with files cannot be rmdir'ed (the tests delete the "interface files" first, as the kernel would)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runner.isolation.cgroups import CgroupHost, RunCgroup, safe_name
from services.runner.ports import Limits

MB = 1024 * 1024


def fake_v2(tmp_path: Path, controllers: str = "cpuset cpu io memory hugetlb pids") -> Path:
    """A delegated v2 root holding the ``lockgate`` parent as the kernel would have made it."""
    root = tmp_path / "cgroup2"
    (root / "lockgate").mkdir(parents=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    for directory in (root, root / "lockgate"):
        (directory / "cgroup.subtree_control").write_text("")
    return root


def fake_v1(tmp_path: Path) -> Path:
    """One directory per controller with the parent already made (detection needs the kernel's files)."""
    root = tmp_path / "cgroup1"
    for controller in ("memory", "cpu", "pids"):
        (root / controller / "lockgate").mkdir(parents=True)
    return root


def delete_interface_files(cgroup: RunCgroup) -> None:
    for directory in cgroup.directories:
        for path in directory.iterdir():
            path.unlink()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "-flag", "x" * 129, "run 1", "r\n"])
def test_unsafe_cgroup_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="cgroup name"):
        safe_name(name)


def test_a_run_id_is_a_safe_name() -> None:
    assert safe_name("run-0f3a9c_1.2") == "run-0f3a9c_1.2"


def test_nothing_is_detected_without_a_cgroup_filesystem(tmp_path: Path) -> None:
    assert CgroupHost.detect(root=tmp_path, parent="lockgate") is None


def test_v2_detection_enables_the_controllers_on_the_way_down(tmp_path: Path) -> None:
    root = fake_v2(tmp_path)
    host = CgroupHost.detect(root=root, parent="lockgate")
    assert host is not None
    assert host.version == 2
    assert host.controllers == {"memory", "cpu", "pids"}
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (root / "lockgate" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"


def test_v2_detection_leaves_out_a_controller_the_kernel_lacks(tmp_path: Path) -> None:
    host = CgroupHost.detect(root=fake_v2(tmp_path, controllers="cpu memory"), parent="lockgate")
    assert host is not None
    assert host.controllers == {"memory", "cpu"}


def test_v2_limits_land_in_the_run_cgroup(tmp_path: Path) -> None:
    root = fake_v2(tmp_path)
    host = CgroupHost.detect(root=root, parent="lockgate")
    assert host is not None
    cgroup = host.create("run-1", Limits(memory_bytes=256 * MB, cpus=1.5, pids=100))
    run = root / "lockgate" / "run-1"
    assert cgroup.directories == (run,)
    assert (run / "memory.max").read_text() == str(256 * MB)
    assert (run / "memory.swap.max").read_text() == "0"
    assert (run / "cpu.max").read_text() == "150000 100000"
    assert (run / "pids.max").read_text() == "100"
    (run / "cgroup.procs").write_text("")  # the kernel's file, present in every cgroup
    cgroup.enter(4242)
    assert (run / "cgroup.procs").read_text() == "4242"
    assert host.leftovers() == [run]
    delete_interface_files(cgroup)
    cgroup.remove()
    assert not run.exists()
    assert host.leftovers() == []


def test_v2_unset_limits_are_not_written(tmp_path: Path) -> None:
    host = CgroupHost.detect(root=fake_v2(tmp_path), parent="lockgate")
    assert host is not None
    cgroup = host.create("run-2", Limits(memory_bytes=64 * MB))
    assert sorted(path.name for path in cgroup.directories[0].iterdir()) == ["memory.max", "memory.swap.max"]


def test_v2_oom_kill_and_peak_come_from_the_kernels_files(tmp_path: Path) -> None:
    host = CgroupHost.detect(root=fake_v2(tmp_path), parent="lockgate")
    assert host is not None
    cgroup = host.create("run-3", Limits(memory_bytes=64 * MB))
    run = cgroup.directories[0]
    assert cgroup.peak_memory() is None  # a kernel before 5.19 has no memory.peak
    (run / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\n")
    assert not cgroup.oom_killed()
    (run / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
    (run / "memory.peak").write_text("71303168\n")
    assert cgroup.oom_killed()
    assert cgroup.peak_memory() == 71303168


def test_v1_uses_one_directory_per_controller_and_only_those_a_limit_needs(tmp_path: Path) -> None:
    root = fake_v1(tmp_path)
    host = CgroupHost(version=1, root=root, parent="lockgate", controllers=frozenset({"memory", "cpu", "pids"}))
    only_memory = host.create("run-a", Limits(memory_bytes=100 * MB))
    assert only_memory.directories == (root / "memory" / "lockgate" / "run-a",)
    cgroup = host.create("run-b", Limits(memory_bytes=100 * MB, cpus=0.5, pids=20))
    memory, cpu, pids = (root / c / "lockgate" / "run-b" for c in ("memory", "cpu", "pids"))
    assert set(cgroup.directories) == {memory, cpu, pids}
    assert (memory / "memory.limit_in_bytes").read_text() == str(100 * MB)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(100 * MB)
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert (pids / "pids.max").read_text() == "20"
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (memory / "memory.max_usage_in_bytes").write_text("104857600\n")
    assert cgroup.oom_killed()
    assert cgroup.peak_memory() == 100 * MB
    assert not only_memory.directories[0].joinpath("memory.oom_control").exists()


def test_v1_without_the_pids_controller_still_limits_memory(tmp_path: Path) -> None:
    root = fake_v1(tmp_path)
    host = CgroupHost(version=1, root=root, parent="lockgate", controllers=frozenset({"memory"}))
    cgroup = host.create("run-c", Limits(memory_bytes=100 * MB, pids=20))
    assert cgroup.directories == (root / "memory" / "lockgate" / "run-c",)
    assert not (root / "pids" / "lockgate" / "run-c").exists()


def test_a_failed_setup_removes_what_it_created(tmp_path: Path) -> None:
    root = fake_v1(tmp_path)
    host = CgroupHost(version=1, root=root, parent="lockgate", controllers=frozenset({"memory", "cpu"}))
    (root / "cpu" / "lockgate").rmdir()  # the cpu hierarchy vanished: its mkdir fails after memory's
    with pytest.raises(OSError, match="cannot set up cgroup 'run-d'"):
        host.create("run-d", Limits(memory_bytes=100 * MB, cpus=1))
    assert list((root / "memory" / "lockgate").iterdir()) == []
