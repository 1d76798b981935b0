"""Environment deciders, Given/When/Then, and the no-secrets rule for target settings."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.commands.tenancy import (
    ArchiveEnvironment,
    ChangeEnvironmentSettings,
    CreateEnvironment,
    RenameEnvironment,
)
from contracts.events.tenancy import (
    EnvironmentArchived,
    EnvironmentCreated,
    EnvironmentRenamed,
    EnvironmentSettingsChanged,
    Repository,
    SecretRef,
)
from services.shared.errors import AlreadyExistsError, ArchivedError, ContractViolationError, NotFoundError
from services.tenancy import domain
from services.tenancy.domain import EnvironmentState, OrgState, ProjectState, TenantState, evolve_environment
from services.tenancy.rules import check_target, looks_secret
from tests.unit.tenancy.scenario import EARLIER, NOW, Scenario

ENV: Scenario[EnvironmentState] = Scenario(evolve_environment)
TENANT = TenantState(tenant_id="acme", name="Acme")
ORG = OrgState(org_id="sales", name="Sales")
PROJECT = ProjectState(
    project_id="shop",
    org_id="sales",
    name="Shop",
    repository=Repository(kind="local", location="/srv/dbt/shop"),
    roundtrip_level=0,
    editable_models=(),
)
FINGERPRINT = "sha256:" + "ab" * 32
PROD = EnvironmentCreated(
    project_id="shop",
    environment_id="prod",
    name="Production",
    adapter_type="snowflake",
    target={"database": "ANALYTICS", "threads": 8},
    secrets={"password": SecretRef(secret_id="vault:kv/dbt/prod", fingerprint=FINGERPRINT)},
    production=True,
    created_at=EARLIER,
)


def create(
    cmd: CreateEnvironment,
    *,
    tenant: TenantState | None = TENANT,
    org: OrgState | None = ORG,
    project: ProjectState | None = PROJECT,
) -> Any:
    return lambda state: domain.create_environment(
        state, cmd, tenant_id="acme", tenant=tenant, org=org, project=project, now=NOW
    )


def command(**changes: Any) -> CreateEnvironment:
    values: dict[str, Any] = {
        "project_id": "shop",
        "environment_id": "prod",
        "name": "Production",
        "adapter_type": "snowflake",
        "target": {"database": "ANALYTICS", "threads": 8},
        "secrets": {"password": SecretRef(secret_id="vault:kv/dbt/prod", fingerprint=FINGERPRINT)},
        "production": True,
    }
    values.update(changes)
    return CreateEnvironment(**values)


def test_an_environment_records_adapter_target_secret_references_and_production() -> None:
    ENV.when(create(command())).then(
        EnvironmentCreated(
            project_id="shop",
            environment_id="prod",
            name="Production",
            adapter_type="snowflake",
            target={"database": "ANALYTICS", "threads": 8},
            secrets={"password": SecretRef(secret_id="vault:kv/dbt/prod", fingerprint=FINGERPRINT)},
            production=True,
            created_at=NOW,
        )
    )


def test_an_archived_project_accepts_no_new_environment() -> None:
    project = ProjectState(
        project_id="shop",
        org_id="sales",
        name="Shop",
        repository=PROJECT.repository,
        roundtrip_level=0,
        editable_models=(),
        status="archived",
    )
    ENV.when(create(command(), project=project)).then_refused(
        ArchivedError, "project 'shop' is archived; it accepts no new environments"
    )


def test_an_unknown_project_is_not_found() -> None:
    ENV.when(create(command(), project=None)).then_refused(NotFoundError, "project 'shop' not found")


def test_an_archived_org_accepts_no_new_environment() -> None:
    ENV.when(create(command(), org=OrgState(org_id="sales", name="S", status="archived"))).then_refused(
        ArchivedError, "org 'sales' is archived"
    )


def test_creating_an_existing_environment_is_refused_naming_it() -> None:
    ENV.given(PROD).when(create(command())).then_refused(
        AlreadyExistsError, "environment 'prod' of project 'shop' already exists"
    )


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "passwd",
        "private_key",
        "private_key_passphrase",
        "token",
        "refresh_token",
        "client_secret",
        "api_key",
        "access_key_id",
        "keyfile_json",
        "credentials",
    ],
)
def test_secret_looking_target_keys_are_refused_with_a_pointer_to_secrets(key: str) -> None:
    error = ENV.when(create(command(target={key: "hunter2"}, secrets={}))).then_refused(
        ContractViolationError, f"target setting '{key}' looks like a secret"
    )
    assert "put a reference in 'secrets'" in error.message
    assert "hunter2" not in error.message


@pytest.mark.parametrize(
    "key", ["database", "schema", "warehouse", "threads", "role", "authenticator", "private_key_path", "token_uri"]
)
def test_ordinary_target_keys_are_not_secrets(key: str) -> None:
    assert not looks_secret(key)


def test_a_pem_key_in_a_target_value_is_refused() -> None:
    with pytest.raises(ContractViolationError, match="looks like a key or certificate"):
        check_target({"extra": "-----BEGIN PRIVATE KEY-----\\nMII..."})


def test_a_url_with_a_password_in_a_target_value_is_refused_without_echoing_it() -> None:
    with pytest.raises(ContractViolationError, match="holds a URL with a password") as info:
        check_target({"dsn": "postgresql://etl:s3cr3t@db.internal:5432/analytics"})
    assert "s3cr3t" not in info.value.message


def test_a_url_without_a_password_is_an_ordinary_value() -> None:
    assert check_target({"host_url": "https://acme.snowflakecomputing.com"}) == {
        "host_url": "https://acme.snowflakecomputing.com"
    }


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ({"Database": "x"}, "snake_case"),
        ({"type": "duckdb"}, "adapter_type"),
        ({"schema": "a\nb"}, "control characters"),
        ({"schema": "x" * 1025}, "at most 1024"),
    ],
)
def test_malformed_target_settings_are_refused(target: dict[str, Any], match: str) -> None:
    with pytest.raises(ContractViolationError, match=match):
        check_target(target)


@pytest.mark.parametrize(
    ("secrets", "match"),
    [
        ({"password": SecretRef(secret_id="x y", fingerprint=FINGERPRINT)}, "secret_id"),
        ({"password": SecretRef(secret_id="vault:x", fingerprint="hunter2")}, "fingerprint"),
        ({"database": SecretRef(secret_id="vault:x", fingerprint=FINGERPRINT)}, "both a target setting and a secret"),
    ],
)
def test_malformed_secret_references_are_refused(secrets: dict[str, SecretRef], match: str) -> None:
    ENV.when(create(command(secrets=secrets))).then_refused(ContractViolationError, match)


@pytest.mark.parametrize("adapter", ["", "Snowflake", "duck-db", "x;y"])
def test_an_adapter_type_that_is_not_an_adapter_name_is_refused(adapter: str) -> None:
    ENV.when(create(command(adapter_type=adapter))).then_refused(ContractViolationError, "adapter type")


def test_an_environment_is_renamed() -> None:
    cmd = RenameEnvironment(project_id="shop", environment_id="prod", name="Prod")
    ENV.given(PROD).when(lambda s: domain.rename_environment(s, cmd, now=NOW)).then(
        EnvironmentRenamed(project_id="shop", environment_id="prod", name="Prod", renamed_at=NOW)
    )


def test_settings_change_records_the_complete_new_settings() -> None:
    cmd = ChangeEnvironmentSettings(
        project_id="shop", environment_id="prod", adapter_type="snowflake", target={"threads": 4}, production=False
    )
    ENV.given(PROD).when(lambda s: domain.change_environment_settings(s, cmd, now=NOW)).then(
        EnvironmentSettingsChanged(
            project_id="shop",
            environment_id="prod",
            adapter_type="snowflake",
            target={"threads": 4},
            production=False,
            changed_at=NOW,
        )
    )


def test_an_archived_environment_refuses_commands() -> None:
    archived = EnvironmentArchived(project_id="shop", environment_id="prod", archived_at=EARLIER)
    cmd = RenameEnvironment(project_id="shop", environment_id="prod", name="Prod")
    ENV.given(PROD, archived).when(lambda s: domain.rename_environment(s, cmd, now=NOW)).then_refused(
        ArchivedError, "environment 'prod' of project 'shop' is archived"
    )


def test_an_environment_is_archived() -> None:
    cmd = ArchiveEnvironment(project_id="shop", environment_id="prod")
    ENV.given(PROD).when(lambda s: domain.archive_environment(s, cmd, now=NOW)).then(
        EnvironmentArchived(project_id="shop", environment_id="prod", archived_at=NOW)
    )
