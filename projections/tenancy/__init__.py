"""The tenancy read model: tenants, orgs, projects and environments, tenant-scoped."""
