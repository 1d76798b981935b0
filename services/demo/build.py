"""Build a dbt project with real dbt and collect its artifacts.

dbt never runs in the project folder. ``generate_artifacts`` copies the project into a temporary workspace
(without ``target/``, ``logs/``, ``dbt_packages/`` or DuckDB files), writes a dbt-duckdb profile whose
database file lives in that workspace, runs each command as a subprocess of this interpreter
(``python -m dbt.cli.main``), copies ``manifest.json``, ``catalog.json``, ``run_results.json`` and
``sources.json`` to ``out_dir`` and removes the workspace. The source folder stays byte-identical.

Exit statuses: dbt exits 0 when the only problems are warn-severity tests (they end with status ``warn``
in ``run_results.json``) and 1 when a node errors or a test fails at error severity, 2 when dbt itself
could not run (a parse error, a bad profile). Anything but 0 raises ``DbtCommandError``.

The demo project has no packages; a project with local packages needs ``"deps"`` as its first command
(hub packages cannot be installed without network access).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Final

import msgspec

from services.shared.errors import ContractViolationError, DbtCommandError

DEMO_PROJECT: Final[Path] = Path(__file__).resolve().parent / "dbt_project"
"""Lockgate's own demo project: read-only input, never a place to run dbt in."""

PROFILE_NAME: Final = "lockgate_demo"
DEFAULT_COMMANDS: Final = ("parse", "build", "docs generate", "source freshness")
DEFAULT_TIMEOUT_S: Final = 600.0

_NOT_COPIED: Final = ("target", "logs", "dbt_packages", "*.duckdb", "*.duckdb.wal", ".user.yml")
"""What a previous dbt run may have left in a project; never copied into the workspace."""
_RUN_RESULTS_OF: Final = frozenset({"build", "run", "test", "seed", "snapshot"})
"""Commands whose run_results.json is kept (``docs generate`` overwrites it with compile results)."""
_TAIL_LINES: Final = 60
_NO_PROFILE: Final = frozenset({"deps", "clean", "init", "debug"})
"""Commands that do not accept ``--profile``."""
_DBT_ENV: Final = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "DBT_USE_COLORS": "false",
    "DBT_LOG_FORMAT": "text",
    "DO_NOT_TRACK": "1",
}


class CommandTiming(msgspec.Struct, frozen=True, kw_only=True):
    command: str
    seconds: float


class DemoArtifacts(msgspec.Struct, frozen=True, kw_only=True):
    """The artifacts copied to ``out_dir``; None for one that no command produced."""

    manifest: Path | None
    catalog: Path | None
    run_results: Path | None
    """Of the last build/run/test/seed/snapshot command, not of ``docs generate``."""
    sources: Path | None
    dbt_version: str
    timings: tuple[CommandTiming, ...]
    """Wall-clock seconds of every command, in the order they ran."""

    def seconds(self, command: str) -> float:
        """Total seconds spent in ``command`` (summed if it ran more than once)."""
        return sum(timing.seconds for timing in self.timings if timing.command == command)


ProfileValue = str | int | bool


def write_profile(
    directory: Path,
    *,
    duckdb_path: Path | None = None,
    threads: int = 2,
    target: str = "dev",
    output: Mapping[str, ProfileValue] | None = None,
) -> Path:
    """Write ``profiles.yml`` (profile ``lockgate_demo``, one target), readable by the owner only.

    The target is ``output`` (``type`` plus the adapter's settings, e.g. an environment's) or, by default, a
    dbt-duckdb target on ``duckdb_path``. dbt is always run with ``--profile``/``--target`` naming it, so the
    project's own ``profile:`` name does not matter.
    """
    if threads < 1:
        raise ContractViolationError(f"threads must be at least 1, not {threads}")
    if not target.strip():
        raise ContractViolationError("target must not be empty")
    if output is None:
        if duckdb_path is None:
            raise ContractViolationError("a profile needs either a duckdb_path or an output")
        output = {"type": "duckdb", "path": str(duckdb_path.resolve())}
    if "type" not in output:
        raise ContractViolationError("a profile output needs its adapter 'type'")
    settings = {"threads": threads, **output}
    directory.mkdir(parents=True, exist_ok=True)
    # JSON strings are valid YAML double-quoted scalars, so any key, path or value is quoted safely.
    lines = [f"{PROFILE_NAME}:", f"  target: {json.dumps(target)}", "  outputs:", f"    {json.dumps(target)}:"]
    lines += [f"      {json.dumps(key)}: {json.dumps(value)}" for key, value in settings.items()]
    path = directory / "profiles.yml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write("\n".join(lines) + "\n")
    return path


def generate_artifacts(
    project_dir: Path,
    out_dir: Path,
    *,
    commands: Sequence[str] = DEFAULT_COMMANDS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    profile_output: Mapping[str, ProfileValue] | None = None,
) -> DemoArtifacts:
    """Run ``commands`` (e.g. ``"build --select tag:nightly"``) on a copy of ``project_dir``; see the module doc.

    ``profile_output`` is the dbt target to use (default: a DuckDB file in the workspace)."""
    project_dir = project_dir.resolve()
    if not (project_dir / "dbt_project.yml").is_file():
        raise ContractViolationError(f"{project_dir} is not a dbt project (no dbt_project.yml)")
    argvs = [shlex.split(command) for command in commands]
    if not argvs or any(not argv for argv in argvs):
        raise ContractViolationError(f"commands must be non-empty dbt commands, not {list(commands)!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    kept: dict[str, Path] = {}
    timings: list[CommandTiming] = []
    with tempfile.TemporaryDirectory(prefix="lockgate-dbt-") as tmp:
        workspace = Path(tmp)
        project = workspace / "project"
        shutil.copytree(project_dir, project, ignore=shutil.ignore_patterns(*_NOT_COPIED))
        profile = write_profile(
            workspace / "profiles", duckdb_path=workspace / f"{PROFILE_NAME}.duckdb", output=profile_output
        )
        env = _dbt_env(os.environ)
        target = project / "target"
        for argv in argvs:
            seconds = _run_dbt(argv, project=project, profiles_dir=profile.parent, env=env, timeout_s=timeout_s)
            timings.append(CommandTiming(command=shlex.join(argv), seconds=seconds))
            if argv[0] in _RUN_RESULTS_OF:
                _keep(target / "run_results.json", out_dir, kept)
            elif argv[:2] == ["docs", "generate"]:
                _keep(target / "catalog.json", out_dir, kept)
            elif argv[:2] == ["source", "freshness"]:
                _keep(target / "sources.json", out_dir, kept)
        _keep(target / "manifest.json", out_dir, kept)
    return DemoArtifacts(
        manifest=kept.get("manifest.json"),
        catalog=kept.get("catalog.json"),
        run_results=kept.get("run_results.json"),
        sources=kept.get("sources.json"),
        dbt_version=_dbt_version(kept),
        timings=tuple(timings),
    )


def _dbt_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without its ``DBT_*`` settings (a stray DBT_TARGET_PATH would move the
    artifacts), plus no tracking, no version check and no colours."""
    env = {key: value for key, value in environ.items() if not key.startswith("DBT_")}
    env.update(_DBT_ENV)
    return env


def _run_dbt(argv: list[str], *, project: Path, profiles_dir: Path, env: dict[str, str], timeout_s: float) -> float:
    command = shlex.join(argv)
    full = [
        sys.executable,
        "-m",
        "dbt.cli.main",
        *argv,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles_dir),
        *(() if argv[0] in _NO_PROFILE else ("--profile", PROFILE_NAME)),
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - our interpreter, arguments as a list
            full,
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        tail = _tail(output)
        raise DbtCommandError(
            f"dbt {command} did not finish within {timeout_s:g} s; its output ends with:\n{tail}",
            command=command,
            returncode=None,
            output_tail=tail,
        ) from exc
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = _tail(done.stdout)
        raise DbtCommandError(
            f"dbt {command} failed with exit status {done.returncode}; its output ends with:\n{tail}",
            command=command,
            returncode=done.returncode,
            output_tail=tail,
        )
    return seconds


def _tail(output: str) -> str:
    return "\n".join(output.rstrip().splitlines()[-_TAIL_LINES:])


def _keep(artifact: Path, out_dir: Path, kept: dict[str, Path]) -> None:
    if artifact.is_file():
        kept[artifact.name] = Path(shutil.copyfile(artifact, out_dir / artifact.name))


def _dbt_version(kept: Mapping[str, Path]) -> str:
    """The version written into the artifacts (the dbt that made them), else the installed dbt-core."""
    for name in ("manifest.json", "run_results.json", "sources.json", "catalog.json"):
        if name in kept:
            try:
                version = json.loads(kept[name].read_bytes())["metadata"]["dbt_version"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(version, str):
                return version
    return metadata.version("dbt-core")
