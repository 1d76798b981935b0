"""Project deciders, Given/When/Then, and the repository-location rules."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.commands.tenancy import ArchiveProject, ChangeProjectSettings, CreateProject, RenameProject
from contracts.events.tenancy import (
    ProjectArchived,
    ProjectCreated,
    ProjectRenamed,
    ProjectSettingsChanged,
    Repository,
)
from services.shared.errors import AlreadyExistsError, ArchivedError, ContractViolationError, NotFoundError
from services.tenancy import domain
from services.tenancy.domain import OrgState, ProjectState, TenantState, evolve_project
from services.tenancy.rules import check_name, check_repository
from tests.unit.tenancy.scenario import EARLIER, NOW, Scenario

PROJECT: Scenario[ProjectState] = Scenario(evolve_project)
TENANT = TenantState(tenant_id="acme", name="Acme")
ORG = OrgState(org_id="sales", name="Sales")
LOCAL = Repository(kind="local", location="/srv/dbt/shop")
SHOP = ProjectCreated(project_id="shop", org_id="sales", name="Shop", repository=LOCAL, created_at=EARLIER)
SHOP_ARCHIVED = ProjectArchived(project_id="shop", archived_at=EARLIER)


def create(cmd: CreateProject, *, tenant: TenantState | None = TENANT, org: OrgState | None = ORG) -> Any:
    return lambda state: domain.create_project(state, cmd, tenant_id="acme", tenant=tenant, org=org, now=NOW)


def command(**changes: Any) -> CreateProject:
    values: dict[str, Any] = {"project_id": "shop", "org_id": "sales", "name": "Shop", "repository": "/srv/dbt/shop"}
    values.update(changes)
    return CreateProject(**values)


# -- create ----------------------------------------------------------------------------------


def test_a_project_with_a_local_repository_is_created_at_level_0() -> None:
    PROJECT.when(create(command())).then(
        ProjectCreated(project_id="shop", org_id="sales", name="Shop", repository=LOCAL, created_at=NOW)
    )


def test_a_project_with_a_git_repository_keeps_its_ref() -> None:
    cmd = command(repository="https://github.com/acme/shop-dbt.git", ref="main", roundtrip_level=1)
    PROJECT.when(create(cmd)).then(
        ProjectCreated(
            project_id="shop",
            org_id="sales",
            name="Shop",
            repository=Repository(kind="git", location="https://github.com/acme/shop-dbt.git", ref="main"),
            roundtrip_level=1,
            created_at=NOW,
        )
    )


def test_level_2_records_its_editable_models_sorted_and_unique() -> None:
    cmd = command(roundtrip_level=2, editable_models=("orders", "model.shop.customers", "orders"))
    PROJECT.when(create(cmd)).then(
        ProjectCreated(
            project_id="shop",
            org_id="sales",
            name="Shop",
            repository=LOCAL,
            roundtrip_level=2,
            editable_models=("model.shop.customers", "orders"),
            created_at=NOW,
        )
    )


@pytest.mark.parametrize("level", [0, 1])
def test_editable_models_below_level_2_are_refused(level: int) -> None:
    PROJECT.when(create(command(roundtrip_level=level, editable_models=("orders",)))).then_refused(
        ContractViolationError, "only allowed at roundtrip level 2"
    )


def test_level_2_without_editable_models_is_refused() -> None:
    PROJECT.when(create(command(roundtrip_level=2))).then_refused(ContractViolationError, "requires the list")


def test_an_editable_model_that_is_not_a_dbt_name_is_refused() -> None:
    PROJECT.when(create(command(roundtrip_level=2, editable_models=("orders; rm -rf /",)))).then_refused(
        ContractViolationError, "not a dbt model name"
    )


def test_creating_an_existing_project_is_refused_naming_it() -> None:
    PROJECT.given(SHOP).when(create(command())).then_refused(AlreadyExistsError, "project 'shop' already exists")


def test_an_archived_org_accepts_no_new_project() -> None:
    archived = OrgState(org_id="sales", name="Sales", status="archived")
    PROJECT.when(create(command(), org=archived)).then_refused(
        ArchivedError, "org 'sales' is archived; it accepts no new projects"
    )


def test_an_unknown_org_is_not_found() -> None:
    PROJECT.when(create(command(), org=None)).then_refused(NotFoundError, "org 'sales' not found")


def test_an_archived_tenant_accepts_no_new_project() -> None:
    archived = TenantState(tenant_id="acme", name="Acme", status="archived")
    PROJECT.when(create(command(), tenant=archived)).then_refused(ArchivedError, "tenant 'acme' is archived")


@pytest.mark.parametrize(
    "name",
    [
        "'; DROP TABLE events; --",
        "<script>alert(1)</script>",
        "$(rm -rf /) `id` && echo pwned",
        "Ünïcödé 名前 🚀",
        "Robert'); DROP TABLE students;--",
    ],
)
def test_hostile_names_are_kept_verbatim(name: str) -> None:
    [event] = domain.create_project(None, command(name=name), tenant_id="acme", tenant=TENANT, org=ORG, now=NOW)
    assert isinstance(event, ProjectCreated)
    assert event.name == name


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", "line\nbreak", "bell\x07", "x" * 201, "\ud800"])
def test_blank_overlong_or_control_character_names_are_refused(name: str) -> None:
    with pytest.raises(ContractViolationError, match="project name"):
        check_name("project", name)


# -- repository rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("/srv/dbt/shop", "local"),
        ("/home/ana/My Projects/dbt shop", "local"),
        ("/data/données/projet", "local"),
        ("https://github.com/acme/shop-dbt.git", "git"),
        ("https://gitlab.example.com:8443/group/sub/shop", "git"),
        ("ssh://git@github.com/acme/shop.git", "git"),
        ("ssh://git@github.com:2222/acme/shop.git", "git"),
        ("git://example.org/shop.git", "git"),
        ("git@github.com:acme/shop-dbt.git", "git"),
    ],
)
def test_repository_locations_accepted(location: str, kind: str) -> None:
    repository = check_repository(location, None)
    assert repository.kind == kind
    assert repository.location == location


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("relative/path", "expected an absolute local path or a git URL"),
        ("~/dbt", "expected an absolute local path or a git URL"),
        ("/srv/../etc/passwd", "must not contain '..'"),
        ("/srv/dbt; rm -rf /", "must not contain"),
        ("/srv/$(id)", "must not contain"),
        ("/srv/`id`", "must not contain"),
        ("/srv/a|b", "must not contain"),
        ("/srv/a\nb", "control characters"),
        ("/srv/a\x00b", "control characters"),
        (" /srv/dbt", "surrounding whitespace"),
        ("-uhelp", "must not start with '-'"),
        ("--upload-pack=touch /tmp/pwned", "must not start with '-'"),
        ("ext::sh -c touch% /tmp/pwned", "remote helpers"),
        ("fd::17", "remote helpers"),
        ("file:///etc", "instead of a file:// URL"),
        ("http://github.com/acme/shop.git", "plain http"),
        ("ftp://example.org/shop.git", "unsupported scheme"),
        ("https://user:ghp_secret@github.com/acme/shop.git", "credentials"),
        ("https://ghp_token@github.com/acme/shop.git", "credentials"),
        ("https://github.com/acme/shop.git?x=1", "query or fragment"),
        ("https://github.com/acme/shop.git#main", "query or fragment"),
        ("https://github.com/acme/../shop.git", "'..'"),
        ("https://github.com/acme/shop$(id).git", "may only contain"),
        ("https://-oProxyCommand=id/x", "not a valid host"),
        ("ssh://-oProxyCommand=id/x", "not a valid host"),
        ("https:///acme/shop.git", "not a valid host"),
        ("https://github.com", "may only contain"),
        ("git@github.com:-x", "start with '-'"),
        ("x" * 1025, "1..1024 characters"),
        ("", "1..1024 characters"),
    ],
)
def test_hostile_or_malformed_repository_locations_are_refused(location: str, reason: str) -> None:
    with pytest.raises(ContractViolationError, match="repository location refused") as info:
        check_repository(location, None)
    assert reason in info.value.message


def test_a_ref_on_a_local_path_is_refused() -> None:
    with pytest.raises(ContractViolationError, match="git repositories only"):
        check_repository("/srv/dbt/shop", "main")


@pytest.mark.parametrize("ref", ["-x", "main..dev", "a//b", "x.lock", "feature/", "a b", "a;b", "@{-1}"])
def test_malformed_refs_are_refused(ref: str) -> None:
    with pytest.raises(ContractViolationError, match="not a valid git branch or tag"):
        check_repository("https://github.com/acme/shop.git", ref)


# -- rename / settings / archive -------------------------------------------------------------


def test_a_project_is_renamed() -> None:
    PROJECT.given(SHOP).when(
        lambda s: domain.rename_project(s, RenameProject(project_id="shop", name="Shop 2"), now=NOW)
    ).then(ProjectRenamed(project_id="shop", name="Shop 2", renamed_at=NOW))


def test_renaming_an_unknown_project_is_not_found() -> None:
    PROJECT.when(lambda s: domain.rename_project(s, RenameProject(project_id="shop", name="X"), now=NOW)).then_refused(
        NotFoundError, "project 'shop' not found"
    )


def test_settings_change_records_the_complete_new_settings() -> None:
    cmd = ChangeProjectSettings(
        project_id="shop",
        repository="git@github.com:acme/shop.git",
        ref="release/1.0",
        roundtrip_level=2,
        editable_models=("orders",),
    )
    PROJECT.given(SHOP).when(lambda s: domain.change_project_settings(s, cmd, now=NOW)).then(
        ProjectSettingsChanged(
            project_id="shop",
            repository=Repository(kind="git", location="git@github.com:acme/shop.git", ref="release/1.0"),
            roundtrip_level=2,
            editable_models=("orders",),
            changed_at=NOW,
        )
    )


def test_unchanged_settings_record_nothing() -> None:
    cmd = ChangeProjectSettings(project_id="shop", repository="/srv/dbt/shop")
    PROJECT.given(SHOP).when(lambda s: domain.change_project_settings(s, cmd, now=NOW)).then_nothing()


def test_settings_of_an_archived_project_cannot_change() -> None:
    cmd = ChangeProjectSettings(project_id="shop", repository="/srv/other")
    PROJECT.given(SHOP, SHOP_ARCHIVED).when(lambda s: domain.change_project_settings(s, cmd, now=NOW)).then_refused(
        ArchivedError, "project 'shop' is archived"
    )


def test_a_project_is_archived() -> None:
    PROJECT.given(SHOP).when(
        lambda s: domain.archive_project(s, ArchiveProject(project_id="shop", reason="moved"), now=NOW)
    ).then(ProjectArchived(project_id="shop", reason="moved", archived_at=NOW))


def test_evolve_applies_settings_and_archive() -> None:
    changed = ProjectSettingsChanged(
        project_id="shop", repository=LOCAL, roundtrip_level=2, editable_models=("orders",), changed_at=NOW
    )
    state = PROJECT.given(SHOP, changed, SHOP_ARCHIVED).state
    assert state is not None
    assert (state.roundtrip_level, state.editable_models, state.status) == (2, ("orders",), "archived")
