"""Lockgate's demo dbt project (``dbt_project/``, a small subscription shop on DuckDB) and the code that builds
it with real dbt to produce the artifacts Lockgate ingests (``services.demo.build``)."""
