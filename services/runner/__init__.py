"""The runner: executes approved plans with dbt Core under control (issue 5, ADR 0013)."""
