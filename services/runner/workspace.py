"""The temporary workspace of one run: a copy of the project, its profile, and the environment dbt runs with.

Layout (the root is private to the runner, mode 0700)::

    <root>/project/               the project: a copy of a local folder, or a git checkout without .git
    <root>/profiles/profiles.yml  the run's profile, 0600 from its creation, outside the project copy
    <root>/target/  <root>/logs/  dbt's artifacts and log file (the project copy keeps only dbt_packages/)
    <root>/tmp/                   TMPDIR

The user's repository is only ever read (roundtrip level 0): a local folder is copied without what earlier
dbt runs left in it (target/, logs/, dbt_packages/, DuckDB files, .user.yml) and without .git; a git repository
is cloned and checked out inside the workspace. ``tree_digest`` is how tests show the original is unchanged.

dbt sees exactly ``Workspace.env``: nothing of the runner's own environment is inherited (it may hold other
runs' or the runner's credentials), and secrets reach dbt only as ``DBT_ENV_SECRET_*`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import os
import re
import shutil
import signal
import stat
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import yaml

from contracts.events.tenancy import Repository
from services.demo.build import _NOT_COPIED
from services.runner.profiles import RenderedProfile
from services.runner.redaction import Redactor
from services.shared.errors import LockgateError

DEFAULT_DEPS_TIMEOUT_S: Final = 300.0
DEFAULT_GIT_TIMEOUT_S: Final = 300.0
_NEVER_COPIED: Final = (*_NOT_COPIED, ".git", "*.duckdb*")
"""What a local project folder's copy leaves out (``services.demo.build``'s rule plus .git and DuckDB's
temporary files). ``target``, ``logs`` and ``dbt_packages`` only at the project's top: a model folder may well
be called ``logs``."""
_TOP_LEVEL_ONLY: Final = frozenset({"target", "logs", "dbt_packages"})
_MACRO_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_SYSTEM_PATH: Final = ("/usr/local/bin", "/usr/bin", "/bin")
_OUTPUT_TAIL_CHARS: Final = 4000


class WorkspaceError(LockgateError):
    """A run's workspace could not be made: the repository is missing or not a dbt project, a commit or ref does
    not exist, ``dbt deps`` failed. The message says what failed (git's or dbt's own words, redacted)."""

    code = "workspace_error"


class Workspace:
    """One run's workspace (see the module doc). ``close`` removes it; it is idempotent."""

    def __init__(
        self,
        *,
        root: Path,
        project_dir: Path,
        profiles_dir: Path,
        target_path: Path,
        log_path: Path,
        env: dict[str, str],
        commit: str | None = None,
    ) -> None:
        self.root = root
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.target_path = target_path
        self.log_path = log_path
        self.env = env
        self.commit = commit
        """The commit checked out, for a git repository."""

    def __repr__(self) -> str:
        # Not the env: it holds the run's secrets.
        return f"Workspace(root={self.root!r}, commit={self.commit!r})"

    @property
    def profile_path(self) -> Path:
        return self.profiles_dir / "profiles.yml"

    def add_macro(self, name: str, sql: str) -> Path:
        """Add ``<macro-path>/lockgate/<name>.sql`` to the project copy (the project's first macro path,
        ``macros`` by default); a file of that name already in the project is not overwritten."""
        if not _MACRO_NAME.fullmatch(name):
            raise WorkspaceError(f"macro file name {name[:100]!r} must be a simple identifier")
        path = self.project_dir / _macro_path(self.project_dir) / "lockgate" / f"{name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(sql)
        except FileExistsError:
            raise WorkspaceError(
                f"the project already has {path.relative_to(self.project_dir).as_posix()}; Lockgate will not replace it"
            ) from None
        return path

    def close(self) -> None:
        """Remove the profile (the one file with secrets' references and settings) first, then everything."""
        self.profile_path.unlink(missing_ok=True)
        if self.root.exists():
            shutil.rmtree(self.root, onerror=_make_writable_and_retry)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


async def open_workspace(
    repository: Repository,
    *,
    root_parent: Path | None,
    commit: str | None,
    profile_for: Callable[[str], RenderedProfile],
    base_env: Mapping[str, str] | None = None,
    deps_timeout: float = DEFAULT_DEPS_TIMEOUT_S,
    git_timeout: float = DEFAULT_GIT_TIMEOUT_S,
) -> Workspace:
    """Make a run's workspace for ``repository``; for git, at ``commit`` (else its ``ref``, else its default
    branch); a local folder is copied as it is.

    ``profile_for`` renders the profile for the project's profile name (``profile:`` in its dbt_project.yml:
    dbt looks the profile up by that name). ``base_env`` is added to the environment dbt runs with. The
    project's packages are installed (``dbt deps``) when it declares any. On any error nothing is left behind.
    """
    # The filesystem work runs in a thread: a large copy must not stall the worker's event loop (its leases).
    workspace = await asyncio.to_thread(_empty_workspace, root_parent)
    try:
        if repository.kind == "local":
            await asyncio.to_thread(_copy_local, repository.location, workspace.project_dir)
        else:
            workspace.commit = await _checkout(
                repository,
                commit or repository.ref,
                workspace.project_dir,
                env=_git_env(workspace.root),
                limit_s=git_timeout,
            )
        profile = profile_for(await asyncio.to_thread(project_profile_name, workspace.project_dir))
        await asyncio.to_thread(profile.write, workspace.profiles_dir)
        workspace.env = _dbt_env(workspace.root, workspace.profiles_dir, base_env or {}, profile.env)
        if await asyncio.to_thread(declares_packages, workspace.project_dir):
            await _dbt_deps(workspace, Redactor(profile.secret_values), limit_s=deps_timeout)
    except BaseException:
        await asyncio.to_thread(workspace.close)
        raise
    return workspace


def _empty_workspace(root_parent: Path | None) -> Workspace:
    if root_parent is not None:
        root_parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="lockgate-run-", dir=root_parent))  # mode 0700
    workspace = Workspace(
        root=root,
        project_dir=root / "project",
        profiles_dir=root / "profiles",
        target_path=root / "target",
        log_path=root / "logs",
        env={},
    )
    for directory in (workspace.target_path, workspace.log_path, root / "tmp"):
        directory.mkdir(mode=0o700)
    return workspace


def project_profile_name(project_dir: Path) -> str:
    """The ``profile:`` of the project's dbt_project.yml: the profile dbt looks for."""
    document = _load_yaml(project_dir / "dbt_project.yml", what="dbt_project.yml")
    name = document.get("profile")
    if not isinstance(name, str) or not name.strip():
        raise WorkspaceError("dbt_project.yml has no 'profile:' naming the dbt profile to use")
    return name


def declares_packages(project_dir: Path) -> bool:
    """Whether packages.yml or dependencies.yml lists packages (dependencies.yml's ``projects`` are not
    installed by ``dbt deps``)."""
    for name in ("packages.yml", "dependencies.yml"):
        path = project_dir / name
        if path.is_file() and _load_yaml(path, what=name).get("packages"):
            return True
    return False


def tree_digest(path: Path) -> str:
    """sha256 over every entry below ``path``, sorted: its relative path, its kind and permission bits, and a
    file's bytes or a symlink's target (links are not followed). Equal digests: an unchanged tree."""
    digest = hashlib.sha256()
    for entry in sorted(path.rglob("*"), key=lambda entry: entry.relative_to(path).as_posix()):
        status = entry.lstat()
        relative = entry.relative_to(path).as_posix().encode(errors="surrogateescape")
        digest.update(b"%s\0%o\0" % (relative, status.st_mode))
        if stat.S_ISLNK(status.st_mode):
            digest.update(str(entry.readlink()).encode(errors="surrogateescape"))
        elif stat.S_ISREG(status.st_mode):
            with entry.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        digest.update(b"\0")
    return digest.hexdigest()


# -- the project ---------------------------------------------------------------------------------------------


def _copy_local(location: str, project_dir: Path) -> None:
    source = Path(location)
    if not source.is_absolute():
        raise WorkspaceError(f"local repository {location!r} is not an absolute path")
    if not (source / "dbt_project.yml").is_file():
        what = "does not exist" if not source.exists() else "is not a dbt project (no dbt_project.yml)"
        raise WorkspaceError(f"local repository {location!r} {what}")

    def ignored(directory: str, names: list[str]) -> set[str]:
        at_top = Path(directory) == source
        return {
            name
            for name in names
            if any(fnmatch.fnmatch(name, pattern) for pattern in _NEVER_COPIED)
            and (at_top or name not in _TOP_LEVEL_ONLY)
        }

    try:
        shutil.copytree(source, project_dir, symlinks=True, ignore=ignored)
    except (OSError, shutil.Error) as exc:
        raise WorkspaceError(f"local repository {location!r} could not be copied: {exc}") from None


async def _checkout(
    repository: Repository, revision: str | None, project_dir: Path, *, env: dict[str, str], limit_s: float
) -> str:
    """Clone ``repository`` into ``project_dir``, check out ``revision`` (detached), drop .git; the commit."""
    location = repository.location
    if revision is not None and (revision.startswith("-") or not revision.strip()):
        raise WorkspaceError(f"git revision {revision!r} is not a commit, branch or tag")
    # "--" ends the options: a location starting with "-" is a path, never an option; no ext:: transport.
    clone = ["clone", "--quiet", "--no-hardlinks", "--no-checkout", "--", location, str(project_dir)]
    await _git(clone, cwd=project_dir.parent, env=env, limit_s=limit_s, failure=f"git clone of {location!r} failed")
    commit = await _resolve(revision, project_dir, env=env, limit_s=limit_s, location=location)
    checkout = ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit]
    await _git(checkout, cwd=project_dir, env=env, limit_s=limit_s, failure=f"checkout of {commit} failed")
    await asyncio.to_thread(shutil.rmtree, project_dir / ".git", onerror=_make_writable_and_retry)
    if not await asyncio.to_thread((project_dir / "dbt_project.yml").is_file):
        raise WorkspaceError(f"git repository {location!r} at {commit} is not a dbt project (no dbt_project.yml)")
    return commit


async def _resolve(revision: str | None, clone: Path, *, env: dict[str, str], limit_s: float, location: str) -> str:
    """The commit ``revision`` names in the clone: a commit, a tag, a branch (the remote's: a fresh clone has
    only its default branch locally), or the default branch when None."""
    candidates = ["HEAD"] if revision is None else [revision, f"origin/{revision}"]
    for candidate in candidates:
        argv = ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"]
        with contextlib.suppress(WorkspaceError):
            return (await _git(argv, cwd=clone, env=env, limit_s=limit_s, failure="")).strip()
    what = "has no default branch" if revision is None else f"has no commit, branch or tag {revision!r}"
    raise WorkspaceError(f"git repository {location!r} {what}")


async def _git(args: Sequence[str], *, cwd: Path, env: dict[str, str], limit_s: float, failure: str) -> str:
    argv = ["git", "-c", "protocol.ext.allow=never", *args]
    returncode, output = await _run(argv, cwd=cwd, env=env, limit_s=limit_s, merge_stderr=False)
    if returncode is None:
        raise WorkspaceError(f"{failure}: git did not finish within {limit_s:g} s")
    if returncode != 0:
        raise WorkspaceError(f"{failure}: {output.strip()[-_OUTPUT_TAIL_CHARS:]}")
    return output


def _git_env(root: Path) -> dict[str, str]:
    """The runner's environment (git may need its SSH agent or credential helper) but never a prompt."""
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "LC_ALL": "C", "TMPDIR": str(root)})
    return env


def _macro_path(project_dir: Path) -> str:
    paths = _load_yaml(project_dir / "dbt_project.yml", what="dbt_project.yml").get("macro-paths")
    if isinstance(paths, list) and paths and isinstance(paths[0], str):
        return paths[0]
    return "macros"


def _load_yaml(path: Path, *, what: str) -> dict[str, object]:
    try:
        document = yaml.safe_load(path.read_bytes())
    except FileNotFoundError:
        raise WorkspaceError(f"the project has no {what}") from None
    except yaml.YAMLError as exc:
        raise WorkspaceError(f"{what} is not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise WorkspaceError(f"{what} is not a YAML mapping")
    return document


# -- dbt -----------------------------------------------------------------------------------------------------


def _dbt_env(root: Path, profiles_dir: Path, base_env: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    scripts = sysconfig.get_path("scripts")  # where this interpreter's ``dbt`` is installed
    env = {
        "PATH": os.pathsep.join((scripts, *_SYSTEM_PATH)),
        "HOME": str(root),
        "TMPDIR": str(root / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "DBT_PROFILES_DIR": str(profiles_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",  # no network call on a runner
        "DBT_USE_COLORS": "false",
    }
    env.update(base_env)
    env.update(secrets)  # last: nothing replaces the profile's own secrets
    return env


async def _dbt_deps(workspace: Workspace, redactor: Redactor, *, limit_s: float) -> None:
    argv = [
        str(Path(sysconfig.get_path("scripts")) / "dbt"),
        "deps",
        "--project-dir",
        str(workspace.project_dir),
        "--profiles-dir",
        str(workspace.profiles_dir),
        "--log-path",
        str(workspace.log_path),
    ]
    returncode, output = await _run(argv, cwd=workspace.project_dir, env=workspace.env, limit_s=limit_s)
    if returncode is None:
        raise WorkspaceError(f"dbt deps did not finish within {limit_s:g} s")
    if returncode != 0:
        tail = redactor.redact(output.strip()[-_OUTPUT_TAIL_CHARS:])
        raise WorkspaceError(f"dbt deps failed with exit status {returncode}:\n{tail}")


async def _run(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], limit_s: float, merge_stderr: bool = True
) -> tuple[int | None, str]:
    """Run ``argv`` to its end or for ``limit_s`` seconds (then its process group is killed: returncode None).
    The output: stdout and stderr merged, or stderr only on failure (git: stdout is the answer, stderr the error).
    """
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise WorkspaceError(f"{Path(argv[0]).name} is not installed on this runner") from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), limit_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return None, ""
    except BaseException:  # cancelled: leave no process behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    if process.returncode != 0 and not merge_stderr:
        return process.returncode, stderr.decode(errors="replace")
    return process.returncode, stdout.decode(errors="replace")


def _make_writable_and_retry(function: Callable[[str], object], path: str, _error: object) -> None:
    """``rmtree``'s error hook: an entry of a read-only directory (git's objects, some packages) cannot be
    removed until its directory is writable again."""
    parent = Path(path).parent
    with contextlib.suppress(OSError):
        parent.chmod(parent.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
    function(path)
