"""Artifact storage: content-addressed, tenant-prefixed objects on local files or S3 (ADR 0009)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from services.shared.errors import ContractViolationError
from services.shared.objectstore.port import (
    DEFAULT_CONTENT_TYPE,
    ObjectCorruptedError,
    ObjectStore,
    StoredObject,
    TenantObjectStore,
)
from services.shared.settings import Settings

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "ObjectCorruptedError",
    "ObjectStore",
    "StoredObject",
    "TenantObjectStore",
    "open_object_store",
]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def open_object_store(settings: Settings) -> ObjectStore:
    """The store ``settings.object_store`` names: ``file`` (``<home>/objects``), ``file:///abs/dir`` or
    ``s3://bucket``. Touches neither disk nor network: directories and the bucket are created on first write."""
    url = settings.object_store
    if url == "file":
        return _local(settings.home / "objects")
    parts = urlsplit(url)
    if parts.scheme == "file" and not parts.netloc and parts.path.startswith("/") and not parts.query:
        return _local(Path(parts.path))
    if parts.scheme == "s3" and _BUCKET.fullmatch(parts.netloc) and parts.path in {"", "/"} and not parts.query:
        from services.shared.objectstore.s3 import S3ObjectStore  # noqa: PLC0415 - the SDK only when configured

        return S3ObjectStore(
            bucket=parts.netloc,
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
            secure=settings.s3_secure,
        )
    raise ContractViolationError(
        f"invalid object store {url[:200]!r}: expected 'file', 'file:///absolute/dir' or 's3://bucket' "
        "(bucket: 3-63 characters of a-z, 0-9, '.' and '-')",
        field="object_store",
    )


def _local(root: Path) -> ObjectStore:
    from services.shared.objectstore.local import LocalObjectStore  # noqa: PLC0415 - symmetric with S3

    return LocalObjectStore(root)
