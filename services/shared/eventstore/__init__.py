"""The event store: one port, a PostgreSQL adapter (asyncpg) that serves both production and the embedded default."""
