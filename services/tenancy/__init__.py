"""Tenancy: tenants, orgs, projects and environments."""
