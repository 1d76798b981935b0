"""The container worker runtime against a real Docker Engine API: podman's compatible service, private to this
test session (its own storage, run directory and socket under a tmp dir; runc; the ulimits this sandbox allows,
FEASIBILITY.md §4), with a busybox image imported from the host's busybox-static.

Skipped when podman, runc or a static busybox is missing (``apt-get install podman runc busybox-static``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from services.runner.isolation.docker import RUN_LABEL, DockerExecution, DockerRuntime
from services.runner.ports import Limits
from services.runner.supervise import Supervised, supervise

IMAGE = "localhost/lockgate-test-busybox:latest"
BUSYBOX_TOOLS = ("sh", "echo", "sleep", "dd", "pwd", "cat")
MB = 1024 * 1024
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def _static_busybox() -> Path | None:
    found = shutil.which("busybox")
    if found is None:
        return None
    head = Path(found).read_bytes()[:4096]
    return None if b"ld-linux" in head else Path(found)  # a dynamic busybox would need libc in the image


@pytest.fixture(scope="session")
def podman_service() -> Iterator[str]:
    """``unix://`` URL of a podman API service that holds ``IMAGE``; stopped and removed at the end of the session.

    Its storage is a private temporary directory, not pytest's: a container left running by a failed test keeps
    a tmpfs mounted in there, which the teardown removes and unmounts before deleting the directory."""
    podman, busybox = shutil.which("podman"), _static_busybox()
    if podman is None or shutil.which("runc") is None or busybox is None:
        pytest.skip("needs podman, runc and a static busybox (apt-get install podman runc busybox-static)")
    base = Path(tempfile.mkdtemp(prefix="lg-podman-"))
    (base / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(base / "containers.conf")}
    command = [podman, "--root", str(base / "root"), "--runroot", str(base / "run"), "--storage-driver", "vfs"]
    image = base / "image"
    (image / "bin").mkdir(parents=True)
    shutil.copy(busybox, image / "bin" / "busybox")
    for tool in BUSYBOX_TOOLS:
        (image / "bin" / tool).symlink_to("busybox")
    tar = subprocess.run(["tar", "-C", str(image), "-c", "."], capture_output=True, check=True).stdout
    subprocess.run([*command, "import", "--change", "ENV PATH=/bin", "-", IMAGE], input=tar, env=env, check=True)
    url = f"unix://{base / 'api.sock'}"
    service_log = base / "service.log"
    with service_log.open("wb") as log:
        service = subprocess.Popen(
            [*command, "system", "service", "--time=0", url], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        socket, deadline = base / "api.sock", time.monotonic() + 20
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"podman system service did not start: {service_log.read_text()[-500:]}")
            time.sleep(0.05)
        docker.DockerClient(base_url=url).close()  # the API answers (the client asks for its version)
        yield url
    finally:
        subprocess.run([*command, "rm", "--all", "--force", "--time", "0"], env=env, capture_output=True, check=False)
        service.terminate()
        service.wait(20)
        _unmount_below(base)
        shutil.rmtree(base)


def _unmount_below(directory: Path) -> None:
    """Unmount what podman left mounted under ``directory`` (deepest first)."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if m.startswith(f"{directory}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount_point], capture_output=True, check=False)


@pytest.fixture
def runtime(podman_service: str) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(IMAGE, podman_service, labels={"lockgate.test": "1"})
    yield runtime
    runtime.close()


async def run(execution: DockerExecution, *, cancel_on: str | None = None) -> tuple[Supervised, list[str]]:
    """Supervise to the end; cancel once the line ``cancel_on`` arrives."""
    lines: list[str] = []
    cancel = asyncio.Event()

    async def keep(line: bytes) -> None:
        lines.append(line.decode())
        if line.decode() == cancel_on:
            cancel.set()

    done = await supervise(execution, on_line=keep, cancel=cancel, timeout=60, grace=10)
    return done, lines


def containers_of(base_url: str, execution: DockerExecution) -> list[object]:
    client = docker.DockerClient(base_url=base_url)
    try:
        return list(client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={execution.execution_id}"}))
    finally:
        client.close()


async def test_output_env_workdir_and_the_writable_bind_mount(
    runtime: DockerRuntime, podman_service: str, tmp_path: Path
) -> None:
    script = "echo $GREETING; sleep 0.2; echo to-stderr >&2; sleep 0.2; pwd; echo written > out.txt"
    execution = await runtime.start(
        ["sh", "-c", script],
        cwd=tmp_path,
        env={"GREETING": "hello", "PATH": "/bin"},
        limits=Limits(memory_bytes=64 * MB, cpus=0.5, pids=50),
        writable=[tmp_path],
    )
    done, lines = await run(execution)
    assert done.exit.returncode == 0
    assert not done.exit.oom_killed
    assert lines == ["hello", "to-stderr", str(tmp_path)]
    assert (tmp_path / "out.txt").read_text() == "written\n"
    assert containers_of(podman_service, execution) == []  # removed after the end


async def test_a_memory_hog_under_a_memory_limit_ends_oom_killed(runtime: DockerRuntime, tmp_path: Path) -> None:
    execution = await runtime.start(
        ["dd", "if=/dev/zero", "bs=300M", "count=1", "of=/dev/null"],
        cwd=tmp_path,
        env={"PATH": "/bin"},
        limits=Limits(memory_bytes=64 * MB),
    )
    done, _ = await run(execution)
    assert done.exit.returncode == 137
    assert done.exit.oom_killed
    assert not done.killed


async def test_cancel_interrupts_the_container_with_its_limits_applied(
    runtime: DockerRuntime, podman_service: str, tmp_path: Path
) -> None:
    execution = await runtime.start(
        ["sh", "-c", "echo ready; exec sleep 60"],
        cwd=tmp_path,
        env={"PATH": "/bin"},
        limits=Limits(memory_bytes=128 * MB, cpus=0.5, pids=64),
    )
    client = docker.DockerClient(base_url=podman_service)
    try:
        host_config = client.containers.get(execution.container_id).attrs["HostConfig"]
    finally:
        client.close()
    assert host_config["Memory"] == 128 * MB
    assert host_config["NanoCpus"] == 500_000_000
    assert host_config["PidsLimit"] == 64
    assert host_config["NetworkMode"] == "host"
    started = time.monotonic()
    done, lines = await run(execution, cancel_on="ready")
    assert done.canceled
    assert not done.killed  # SIGINT alone ended it, through the container's init
    assert done.exit.returncode == 130
    assert not done.exit.oom_killed
    assert lines == ["ready"]
    assert time.monotonic() - started < 8
    assert containers_of(podman_service, execution) == []


async def test_our_own_kill_under_a_memory_limit_is_not_taken_for_an_oom_kill(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    execution = await runtime.start(
        ["sh", "-c", "trap '' INT; echo ready; while true; do sleep 1; done"],
        cwd=tmp_path,
        env={"PATH": "/bin"},
        limits=Limits(memory_bytes=64 * MB),
    )
    lines: list[str] = []
    cancel = asyncio.Event()

    async def keep(line: bytes) -> None:
        lines.append(line.decode())
        cancel.set()

    done = await supervise(execution, on_line=keep, cancel=cancel, timeout=60, grace=1)
    assert done.killed
    assert done.exit.returncode == 137
    assert not done.exit.oom_killed
