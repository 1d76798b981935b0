"""The object-store port: immutable, content-addressed blobs (dbt artifacts, logs), always seen through one
tenant's view.

Like the event store, every call that reads or writes goes through ``store.for_tenant(t)``: a view can only
build keys under its own prefix and refuses to read anyone else's, so a key that leaked into another tenant's
request is just "not found". Adapters: ``local`` (files under a root directory, the embedded default) and
``s3`` (any S3-compatible server through the ``minio`` SDK); ``open_object_store(settings)`` picks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import msgspec

from services.shared.errors import InfrastructureError

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    """``<tenant>/<kind>/<sha256[:2]>/<sha256>``: what callers keep (in events) to read the object back."""
    sha256: str
    size: int
    content_type: str
    """As given by the first put of these bytes: later puts of the same content do not change it."""


class ObjectCorruptedError(InfrastructureError):
    """The stored bytes do not hash to their key (bit rot, tampering, a truncated write). Never returned silently."""

    code = "object_corrupted"


class TenantObjectStore(Protocol):
    @property
    def tenant_id(self) -> str: ...

    async def put(
        self, kind: str, data: bytes | bytearray | memoryview, *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> StoredObject:
        """Store ``data`` under its content key. Storing the same bytes again writes nothing and returns the
        same key. ``kind`` is a slug (``manifest``, ``catalog``, ``run_results``, ``logs``...). A mutable
        buffer must not change until the call returns."""
        ...

    async def put_file(self, kind: str, path: Path, *, content_type: str = DEFAULT_CONTENT_TYPE) -> StoredObject:
        """Like ``put``, streaming from a file in chunks (hundreds of MB never sit in memory). The file must not
        change meanwhile: if it does, nothing is kept and ``ContractViolationError`` is raised."""
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes, verified against the hash in the key (``ObjectCorruptedError`` otherwise).

        ``NotFoundError`` if it is absent or belongs to another tenant (which is not revealed);
        ``ContractViolationError`` if ``key`` is not a well-formed key at all.
        """
        ...

    async def download(self, key: str, dest: Path) -> StoredObject:
        """Stream the object into ``dest`` (replaced atomically), verified like ``get``: a corrupt object
        leaves ``dest`` untouched."""
        ...

    async def stat(self, key: str) -> StoredObject | None:
        """Size and content type without reading the bytes; None if absent or another tenant's."""
        ...

    async def exists(self, key: str) -> bool: ...


class ObjectStore(Protocol):
    @property
    def location(self) -> str:
        """Where the objects live, for logs and error messages (never carries credentials)."""
        ...

    def for_tenant(self, tenant_id: str) -> TenantObjectStore: ...
