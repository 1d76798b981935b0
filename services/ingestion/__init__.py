"""Ingestion: dbt artifacts in, a normalised graph and its events out."""
