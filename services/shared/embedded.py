"""The embedded PostgreSQL of the default mode: a real PostgreSQL 16 from the ``pgserver`` wheel (ADR 0003).

It runs the very same store code as production; it listens on a unix socket only (no TCP port to clash with)
and stops when the last process using it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from services.shared.errors import InfrastructureError

log = logging.getLogger(__name__)


def start_embedded_postgres(home: Path) -> tuple[str, Any]:
    """Start (or reuse) the server under ``home/pg`` and return ``(dsn, handle)``; keep the handle alive."""
    data = (home / "pg").resolve()
    data.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pgserver.postgres_server import get_server  # noqa: PLC0415 - heavy; embedded mode only

        try:
            server = get_server(data, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises plain exceptions from pg_ctl/initdb
            raise InfrastructureError(f"embedded PostgreSQL failed to start in {data}: {exc}") from exc
    dsn = str(server.get_uri())
    log.info("embedded PostgreSQL ready at %s", data)
    return dsn, server
