"""A run's workspace with real dbt (dbt-duckdb, no network): dbt builds the demo project in it while the user's
repository stays byte-identical; the profile is 0600 and gone with the workspace; a git repository is checked
out at the requested commit; local packages are installed; a secret reaches dbt only as DBT_ENV_SECRET_* and
appears neither in the profile nor in dbt's output, log or artifacts."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from contracts.events.tenancy import Repository
from services.demo.build import DEMO_PROJECT
from services.runner.profiles import TARGET_NAME, RenderedProfile, render_profile
from services.runner.workspace import WorkspaceError, open_workspace, project_profile_name, tree_digest

DBT_TIMEOUT_S = 300
GIT = ("git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main")


def duckdb_profile(database: Path, **extra: str | int) -> Callable[[str], RenderedProfile]:
    # Lockgate's own settings ride along in the target: they must not reach dbt (it would refuse them).
    target = {"path": str(database), "threads": 2, "currency": "EUR", "memory_limit_mb": 512, **extra}
    return lambda name: render_profile(name, "duckdb", target, {})


def dbt(workspace_env: dict[str, str], project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("dbt", path=workspace_env["PATH"])
    assert executable is not None
    return subprocess.run(
        [executable, *args, "--target", TARGET_NAME],
        cwd=project,
        env=workspace_env,
        capture_output=True,
        text=True,
        timeout=DBT_TIMEOUT_S,
        check=False,
    )


def files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """The demo project as a user's repository, with what earlier dbt runs and tools leave behind."""
    repo = tmp_path / "user-repo"
    shutil.copytree(DEMO_PROJECT, repo, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    (repo / "target").mkdir()
    (repo / "target" / "manifest.json").write_text("{}")
    (repo / "logs").mkdir()
    (repo / "logs" / "dbt.log").write_text("old log")
    (repo / "old.duckdb").write_bytes(b"db")
    (repo / "old.duckdb.wal").write_bytes(b"wal")
    (repo / ".user.yml").write_text("id: someone")
    (repo / ".git").mkdir()
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (repo / "models" / "logs").mkdir()  # a model folder that happens to be called "logs" is the project's own
    (repo / "models" / "logs" / "README.md").write_text("kept")
    return repo


@pytest.fixture
def workspaces(tmp_path: Path) -> Path:
    parent = tmp_path / "workspaces"
    parent.mkdir()
    return parent


async def test_dbt_builds_in_the_workspace_and_the_users_repository_is_unchanged(
    user_repo: Path, workspaces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_TEST_CANARY", "inherited")
    before = tree_digest(user_repo)

    workspace = await open_workspace(
        Repository(kind="local", location=str(user_repo)),
        root_parent=workspaces,
        commit=None,
        profile_for=duckdb_profile(tmp_path / "warehouse.duckdb"),
        base_env={"DBT_PARTIAL_PARSE": "false"},
    )
    try:
        copied = files(workspace.project_dir)
        assert "models/logs/README.md" in copied
        assert not {"target/manifest.json", "logs/dbt.log", "old.duckdb", "old.duckdb.wal", ".user.yml"} & set(copied)
        assert not (workspace.project_dir / ".git").exists()
        assert stat.S_IMODE(workspace.root.stat().st_mode) == 0o700
        assert stat.S_IMODE(workspace.profile_path.stat().st_mode) == 0o600
        assert not workspace.profile_path.is_relative_to(workspace.project_dir)
        assert project_profile_name(workspace.project_dir) == "lockgate_demo"
        assert "LOCKGATE_TEST_CANARY" not in workspace.env
        assert shutil.which("dbt", path=workspace.env["PATH"]) == str(Path(sys.executable).parent / "dbt")
        assert workspace.env["HOME"] == str(workspace.root)
        assert workspace.env["DBT_PARTIAL_PARSE"] == "false"

        done = dbt(
            workspace.env,
            workspace.project_dir,
            "build",
            "--target-path",
            str(workspace.target_path),
            "--log-path",
            str(workspace.log_path),
        )

        assert done.returncode == 0, done.stdout[-3000:]
        results = json.loads((workspace.target_path / "run_results.json").read_bytes())["results"]
        assert {result["status"] for result in results} <= {"success", "pass", "warn", "no-op"}
        assert len(results) > 30
        assert stat.S_IMODE(workspace.profile_path.stat().st_mode) == 0o600
        assert tree_digest(user_repo) == before
    finally:
        workspace.close()

    assert not workspace.profile_path.exists()
    assert not workspace.root.exists()
    assert list(workspaces.iterdir()) == []
    workspace.close()  # idempotent


async def test_a_macro_is_added_to_the_copy_only(user_repo: Path, workspaces: Path, tmp_path: Path) -> None:
    before = tree_digest(user_repo)
    repository = Repository(kind="local", location=str(user_repo))
    with await open_workspace(
        repository, root_parent=workspaces, commit=None, profile_for=duckdb_profile(tmp_path / "w.duckdb")
    ) as workspace:
        path = workspace.add_macro("query_tag", "{% macro lockgate_probe() %}1{% endmacro %}")

        assert path == workspace.project_dir / "macros" / "lockgate" / "query_tag.sql"
        with pytest.raises(WorkspaceError, match=r"already has macros/lockgate/query_tag\.sql"):
            workspace.add_macro("query_tag", "")
        for bad in ("../escape", "a/b", "", "x.sql", "1abc"):
            with pytest.raises(WorkspaceError, match="simple identifier"):
                workspace.add_macro(bad, "")
    assert tree_digest(user_repo) == before


async def test_a_secret_reaches_dbt_only_through_dbt_env_secret(workspaces: Path, tmp_path: Path) -> None:
    """The DuckDB file's location stands for a credential (a MotherDuck path carries its token): dbt must open
    the database there, and print it only scrubbed."""
    secret_dir = tmp_path / "vault-5f1c2a9e"
    secret_dir.mkdir()
    secret = str(secret_dir / "warehouse.duckdb")
    repository = Repository(kind="local", location=str(DEMO_PROJECT))

    def profile_for(name: str) -> RenderedProfile:
        return render_profile(name, "duckdb", {"threads": 2}, {"path": secret})

    with await open_workspace(repository, root_parent=workspaces, commit=None, profile_for=profile_for) as workspace:
        assert workspace.env["DBT_ENV_SECRET_PATH"] == secret
        assert "vault-5f1c2a9e" not in workspace.profile_path.read_text()
        logs = ("--log-path", str(workspace.log_path))

        debug = dbt(workspace.env, workspace.project_dir, "debug", *logs)
        build = dbt(
            workspace.env,
            workspace.project_dir,
            "build",
            "--select",
            "+stg_shop__plans",
            "--target-path",
            str(workspace.target_path),
            *logs,
        )

        assert debug.returncode == 0, debug.stdout[-3000:]
        assert build.returncode == 0, build.stdout[-3000:]
        assert "path: *****" in debug.stdout  # dbt rendered the secret into the profile, and scrubbed it
        with duckdb.connect(secret, read_only=True) as connection:  # ...and used it
            assert connection.execute("select count(*) from main.stg_shop__plans").fetchone() == (4,)
        outputs = {
            "dbt debug output": debug.stdout + debug.stderr,
            "dbt build output": build.stdout + build.stderr,
            "dbt.log": (workspace.log_path / "dbt.log").read_text(),
            **{str(path): path.read_text(errors="replace") for path in workspace.target_path.rglob("*.json")},
        }
        for name, text in outputs.items():
            assert "vault-5f1c2a9e" not in text, name


async def test_a_setting_outside_dbt_env_secret_is_printed_by_dbt(workspaces: Path, tmp_path: Path) -> None:
    """The control for the test above: the same location as a plain target setting shows in dbt's output."""
    visible = tmp_path / "visible-3d7e" / "warehouse.duckdb"
    visible.parent.mkdir()
    repository = Repository(kind="local", location=str(DEMO_PROJECT))

    with await open_workspace(
        repository, root_parent=workspaces, commit=None, profile_for=duckdb_profile(visible)
    ) as workspace:
        debug = dbt(workspace.env, workspace.project_dir, "debug", "--log-path", str(workspace.log_path))

    assert debug.returncode == 0, debug.stdout[-3000:]
    assert "visible-3d7e" in debug.stdout


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


class GitRepo:
    """A git repository of the demo project: commit ``first`` (tag v1), then ``second`` adds a model; branch
    ``feature`` (not checked out) adds another."""

    def __init__(self, path: Path) -> None:
        self.path = path
        shutil.copytree(DEMO_PROJECT, path, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
        git(path, "init", "--quiet")
        git(path, "add", "--all")
        git(path, "commit", "--quiet", "-m", "first")
        self.first = git(path, "rev-parse", "HEAD")
        self.first_files = {name: data for name, data in files(path).items() if not name.startswith(".git/")}
        git(path, "tag", "v1")
        git(path, "checkout", "--quiet", "-b", "feature")
        (path / "models" / "marts" / "feature_only.sql").write_text("select 2 as id\n")
        git(path, "add", "--all")
        git(path, "commit", "--quiet", "-m", "feature")
        self.feature = git(path, "rev-parse", "HEAD")
        git(path, "checkout", "--quiet", "main")
        (path / "models" / "marts" / "second_only.sql").write_text("select 1 as id\n")
        git(path, "add", "--all")
        git(path, "commit", "--quiet", "-m", "second")
        self.second = git(path, "rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "git-repo")


async def test_a_git_workspace_holds_the_files_of_the_requested_commit(
    git_repo: GitRepo, workspaces: Path, tmp_path: Path
) -> None:
    before = tree_digest(git_repo.path)
    profile = duckdb_profile(tmp_path / "w.duckdb")

    async def checkout(location: str, commit: str | None, ref: str | None = None) -> tuple[str | None, set[str]]:
        repository = Repository(kind="git", location=location, ref=ref)
        with await open_workspace(repository, root_parent=workspaces, commit=commit, profile_for=profile) as ws:
            assert not (ws.project_dir / ".git").exists()
            assert stat.S_IMODE(ws.profile_path.stat().st_mode) == 0o600
            if commit == git_repo.first:
                assert files(ws.project_dir) == git_repo.first_files
            return ws.commit, {path.name for path in (ws.project_dir / "models" / "marts").glob("*_only.sql")}

    location = str(git_repo.path)
    assert await checkout(location, git_repo.first) == (git_repo.first, set())
    assert await checkout(f"file://{location}", None) == (git_repo.second, {"second_only.sql"})
    assert await checkout(location, None, ref="v1") == (git_repo.first, set())
    assert await checkout(location, None, ref="feature") == (git_repo.feature, {"feature_only.sql"})
    assert await checkout(location, git_repo.first, ref="feature") == (git_repo.first, set())  # the commit wins
    assert tree_digest(git_repo.path) == before
    assert list(workspaces.iterdir()) == []


@pytest.mark.parametrize(
    "case",
    [
        ("git", "{repo}", "0" * 40, "has no commit, branch or tag '0000000000000000000000000000000000000000'"),
        ("git", "{repo}", "no-such-branch", "has no commit, branch or tag 'no-such-branch'"),
        ("git", "{repo}", "--upload-pack=touch /tmp/x", "is not a commit, branch or tag"),
        ("git", "{tmp}/missing", None, "git clone of '{tmp}/missing' failed: fatal: repository"),
        ("local", "{tmp}/missing", None, "local repository '{tmp}/missing' does not exist"),
        ("local", "{tmp}", None, "is not a dbt project"),
        ("local", "relative/path", None, "is not an absolute path"),
    ],
)
async def test_a_workspace_that_cannot_be_made_says_why_and_leaves_nothing(
    git_repo: GitRepo, workspaces: Path, tmp_path: Path, case: tuple[str, str, str | None, str]
) -> None:
    kind, location, commit, message = case

    def fill(text: str) -> str:
        return text.format(repo=git_repo.path, tmp=tmp_path)

    repository = Repository(kind="git" if kind == "git" else "local", location=fill(location))

    with pytest.raises(WorkspaceError) as caught:
        await open_workspace(
            repository, root_parent=workspaces, commit=commit, profile_for=duckdb_profile(tmp_path / "w.duckdb")
        )

    assert fill(message) in caught.value.message
    assert "Traceback" not in caught.value.message
    assert list(workspaces.iterdir()) == []


def add_local_package(repo: Path, package: str) -> None:
    """A local package with one macro, declared in packages.yml (the only kind dbt deps installs offline)."""
    (repo / "packages.yml").write_text(f"packages:\n  - local: {package}\n")
    helpers = repo / "local_packages" / "helpers"
    (helpers / "macros").mkdir(parents=True)
    (helpers / "dbt_project.yml").write_text("name: helpers\nversion: '1.0.0'\nconfig-version: 2\n")
    (helpers / "macros" / "answer.sql").write_text("{% macro answer() %}42{% endmacro %}\n")


async def test_dbt_deps_installs_local_packages_in_the_workspace(
    user_repo: Path, workspaces: Path, tmp_path: Path
) -> None:
    add_local_package(user_repo, "local_packages/helpers")
    (user_repo / "models" / "uses_package.sql").write_text("select {{ helpers.answer() }} as answer\n")
    before = tree_digest(user_repo)
    repository = Repository(kind="local", location=str(user_repo))

    with await open_workspace(
        repository, root_parent=workspaces, commit=None, profile_for=duckdb_profile(tmp_path / "w.duckdb")
    ) as workspace:
        assert (workspace.project_dir / "dbt_packages" / "helpers" / "dbt_project.yml").is_file()
        done = dbt(
            workspace.env,
            workspace.project_dir,
            "run",
            "--select",
            "uses_package",
            "--target-path",
            str(workspace.target_path),
            "--log-path",
            str(workspace.log_path),
        )
        assert done.returncode == 0, done.stdout[-3000:]
        with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as connection:
            assert connection.execute("select answer from main.uses_package").fetchone() == (42,)

    assert tree_digest(user_repo) == before
    assert not (user_repo / "dbt_packages").exists()


async def test_a_failing_dbt_deps_is_a_workspace_error_with_dbts_message(
    user_repo: Path, workspaces: Path, tmp_path: Path
) -> None:
    add_local_package(user_repo, "local_packages/not_there")
    repository = Repository(kind="local", location=str(user_repo))

    with pytest.raises(WorkspaceError, match=r"dbt deps failed with exit status \d+:\n(.|\n)*not_there"):
        await open_workspace(
            repository, root_parent=workspaces, commit=None, profile_for=duckdb_profile(tmp_path / "w.duckdb")
        )
    assert list(workspaces.iterdir()) == []
