"""Tenant and org deciders, Given/When/Then."""

from __future__ import annotations

import pytest

from contracts.commands.tenancy import ArchiveOrg, ArchiveTenant, CreateOrg, CreateTenant, RenameOrg, RenameTenant
from contracts.events.tenancy import (
    OrgArchived,
    OrgCreated,
    OrgRenamed,
    ProjectRenamed,
    TenantArchived,
    TenantCreated,
    TenantRenamed,
)
from services.shared.errors import AlreadyExistsError, ArchivedError, ContractViolationError, NotFoundError
from services.tenancy import domain
from services.tenancy.domain import OrgState, TenantState, evolve_org, evolve_tenant
from tests.unit.tenancy.scenario import EARLIER, NOW, Scenario

TENANT: Scenario[TenantState] = Scenario(evolve_tenant)
ORG: Scenario[OrgState] = Scenario(evolve_org)
ACME = TenantCreated(tenant_id="acme", name="Acme", created_at=EARLIER)
ACME_ARCHIVED = TenantArchived(tenant_id="acme", archived_at=EARLIER)
SALES = OrgCreated(org_id="sales", name="Sales", created_at=EARLIER)
ACTIVE_TENANT = TenantState(tenant_id="acme", name="Acme")


# -- tenant ----------------------------------------------------------------------------------


def test_a_new_tenant_is_created() -> None:
    TENANT.when(lambda s: domain.create_tenant(s, CreateTenant(tenant_id="acme", name="Acme"), now=NOW)).then(
        TenantCreated(tenant_id="acme", name="Acme", created_at=NOW)
    )


def test_creating_an_existing_tenant_is_refused_naming_it() -> None:
    TENANT.given(ACME).when(
        lambda s: domain.create_tenant(s, CreateTenant(tenant_id="acme", name="Other"), now=NOW)
    ).then_refused(AlreadyExistsError, "tenant 'acme' already exists")


@pytest.mark.parametrize("tenant_id", ["Acme", "ac-me", "", "a b", "'; DROP TABLE events; --", "x" * 64])
def test_a_tenant_id_that_is_not_a_slug_is_refused(tenant_id: str) -> None:
    TENANT.when(lambda s: domain.create_tenant(s, CreateTenant(tenant_id=tenant_id, name="X"), now=NOW)).then_refused(
        ContractViolationError, "not a valid slug"
    )


def test_a_tenant_is_renamed() -> None:
    rename = RenameTenant(tenant_id="acme", name="ACME")
    TENANT.given(ACME).when(lambda s: domain.rename_tenant(s, rename, now=NOW)).then(
        TenantRenamed(tenant_id="acme", name="ACME", renamed_at=NOW)
    )


def test_renaming_to_the_current_name_records_nothing() -> None:
    TENANT.given(ACME).when(
        lambda s: domain.rename_tenant(s, RenameTenant(tenant_id="acme", name="Acme"), now=NOW)
    ).then_nothing()


def test_renaming_an_unknown_tenant_is_not_found() -> None:
    TENANT.when(lambda s: domain.rename_tenant(s, RenameTenant(tenant_id="acme", name="X"), now=NOW)).then_refused(
        NotFoundError, "tenant 'acme' not found"
    )


def test_renaming_an_archived_tenant_is_refused() -> None:
    TENANT.given(ACME, ACME_ARCHIVED).when(
        lambda s: domain.rename_tenant(s, RenameTenant(tenant_id="acme", name="X"), now=NOW)
    ).then_refused(ArchivedError, "tenant 'acme' is archived")


def test_a_tenant_is_archived_with_its_reason() -> None:
    TENANT.given(ACME).when(
        lambda s: domain.archive_tenant(s, ArchiveTenant(tenant_id="acme", reason="contract ended"), now=NOW)
    ).then(TenantArchived(tenant_id="acme", reason="contract ended", archived_at=NOW))


def test_archiving_twice_is_refused() -> None:
    TENANT.given(ACME, ACME_ARCHIVED).when(
        lambda s: domain.archive_tenant(s, ArchiveTenant(tenant_id="acme"), now=NOW)
    ).then_refused(ArchivedError, "already archived|is archived")


# -- org -------------------------------------------------------------------------------------


def test_an_org_is_created_in_an_active_tenant() -> None:
    ORG.when(
        lambda s: domain.create_org(
            s, CreateOrg(org_id="sales", name="Sales"), tenant_id="acme", tenant=ACTIVE_TENANT, now=NOW
        )
    ).then(OrgCreated(org_id="sales", name="Sales", created_at=NOW))


def test_an_org_needs_its_tenant() -> None:
    ORG.when(
        lambda s: domain.create_org(s, CreateOrg(org_id="sales", name="Sales"), tenant_id="acme", tenant=None, now=NOW)
    ).then_refused(NotFoundError, "tenant 'acme' not found")


def test_an_archived_tenant_accepts_no_new_org() -> None:
    archived = TenantState(tenant_id="acme", name="Acme", status="archived")
    ORG.when(
        lambda s: domain.create_org(
            s, CreateOrg(org_id="sales", name="Sales"), tenant_id="acme", tenant=archived, now=NOW
        )
    ).then_refused(ArchivedError, "tenant 'acme' is archived; it accepts no new orgs")


def test_creating_an_existing_org_is_refused_naming_it() -> None:
    ORG.given(SALES).when(
        lambda s: domain.create_org(
            s, CreateOrg(org_id="sales", name="Sales"), tenant_id="acme", tenant=ACTIVE_TENANT, now=NOW
        )
    ).then_refused(AlreadyExistsError, "org 'sales' already exists")


def test_an_org_is_renamed() -> None:
    ORG.given(SALES).when(lambda s: domain.rename_org(s, RenameOrg(org_id="sales", name="Revenue"), now=NOW)).then(
        OrgRenamed(org_id="sales", name="Revenue", renamed_at=NOW)
    )


def test_an_archived_org_cannot_be_renamed() -> None:
    ORG.given(SALES, OrgArchived(org_id="sales", archived_at=EARLIER)).when(
        lambda s: domain.rename_org(s, RenameOrg(org_id="sales", name="Revenue"), now=NOW)
    ).then_refused(ArchivedError, "org 'sales' is archived")


def test_an_org_is_archived() -> None:
    ORG.given(SALES).when(lambda s: domain.archive_org(s, ArchiveOrg(org_id="sales"), now=NOW)).then(
        OrgArchived(org_id="sales", archived_at=NOW)
    )


def test_archiving_an_unknown_org_is_not_found() -> None:
    ORG.when(lambda s: domain.archive_org(s, ArchiveOrg(org_id="sales"), now=NOW)).then_refused(
        NotFoundError, "org 'sales' not found"
    )


# -- evolve ----------------------------------------------------------------------------------


def test_evolve_refuses_an_event_of_another_aggregate() -> None:
    with pytest.raises(ContractViolationError, match="foreign event ProjectRenamed"):
        evolve_org(None, ProjectRenamed(project_id="p", name="x", renamed_at=NOW))


def test_evolve_refuses_a_change_before_the_creation() -> None:
    with pytest.raises(ContractViolationError, match="before its creation"):
        evolve_tenant(None, TenantRenamed(tenant_id="acme", name="x", renamed_at=NOW))


def test_evolve_folds_a_tenants_history() -> None:
    state = TENANT.given(ACME, TenantRenamed(tenant_id="acme", name="ACME", renamed_at=NOW), ACME_ARCHIVED).state
    assert state == TenantState(tenant_id="acme", name="ACME", status="archived")
