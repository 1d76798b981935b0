"""dbt's artifacts as dbt writes them: ``manifest.json``, ``catalog.json``, ``run_results.json``, ``sources.json``.

Only the parts Lockgate reads are declared; msgspec skips every other key without building it, which is
what makes a typed decode of a 70 MB manifest several times faster than ``json.loads``. The Structs are
lenient the way dbt is (dbt never validates v12 strictly "to allow for safer schema upgrades"): enums are
plain ``str``, anything an older schema version lacks has a default, and one Struct family serves every
schema version whose shapes agree. ``services.ingestion`` turns them into :mod:`contracts.graph`.
"""

from __future__ import annotations

NEWEST_VERSION: dict[str, int] = {"manifest": 12, "catalog": 1, "run-results": 6, "sources": 3}
"""The newest schema version of each artifact kind (the path segment of ``dbt_schema_version``) that these
Structs were checked against. Versions 1..newest are known; a later one is read as the newest, with a warning."""
