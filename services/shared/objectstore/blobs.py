"""What an adapter implements: a few blocking operations on already-validated keys.

Adapters are synchronous on purpose. The S3 SDK (``minio``) is synchronous, and file I/O has no useful async
form on Linux, so ``store.py`` runs every one of these calls in a worker thread (``asyncio.to_thread``) and
keeps hashing, verification, tenancy and idempotence in one place for both adapters.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from typing import Protocol

import msgspec

from services.shared.objectstore.keys import ObjectKey

CHUNK = 1024 * 1024
"""Read and hash in 1 MiB chunks: large enough for throughput, small enough to keep memory flat."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class BlobStat(msgspec.Struct, frozen=True):
    size: int
    content_type: str


class Blob(Protocol):
    """An open object: its stat and a reader of its bytes."""

    @property
    def stat(self) -> BlobStat: ...

    def read(self, size: int = -1, /) -> bytes: ...


class Blobs(Protocol):
    @property
    def location(self) -> str: ...

    def stat(self, key: ObjectKey) -> BlobStat | None: ...

    def write(self, key: ObjectKey, source: Readable, size: int, content_type: str) -> None:
        """Store exactly ``size`` bytes read from ``source`` so that readers see all of them or none.

        ``EOFError`` if ``source`` ends early (a file that shrank under the upload); nothing is kept then.
        """
        ...

    def open(self, key: ObjectKey) -> AbstractContextManager[Blob]:
        """Open for reading; ``NotFoundError`` if absent."""
        ...

    def remove(self, key: ObjectKey) -> None: ...


class HashingReader:
    """Hashes and counts what a consumer (an adapter's ``write``) actually reads from ``source``."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._source.read(size)
        self.hash.update(chunk)
        self.size += len(chunk)
        return chunk


class ExactReader:
    """Reads exactly ``size`` bytes of ``source``: never more (a file still growing is cut at the size that was
    hashed) and never silently fewer (``EOFError``), so an adapter stores exactly what the key was made from."""

    def __init__(self, source: Readable, size: int) -> None:
        self._source = source
        self._remaining = size

    def read(self, size: int = -1, /) -> bytes:
        want = self._remaining if size < 0 else min(size, self._remaining)
        if want == 0:
            return b""
        chunk = self._source.read(want)
        if not chunk:
            raise EOFError(f"the source ended {self._remaining} bytes early")
        self._remaining -= len(chunk)
        return chunk


class BufferReader:
    """A reader over a buffer that copies one requested chunk at a time (``io.BytesIO`` would copy it whole,
    and the S3 SDK insists on ``bytes`` chunks)."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._pos + size)
        chunk = bytes(self._data[self._pos : end])
        self._pos = end
        return chunk
