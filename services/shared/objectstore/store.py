"""The one implementation of the port over any ``Blobs`` adapter: tenancy, content addressing, idempotence and
verification live here once, so the file and S3 adapters cannot drift apart on any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from services.shared.errors import ContractViolationError, NotFoundError
from services.shared.objectstore.blobs import CHUNK, Blobs, BlobStat, BufferReader, ExactReader, HashingReader, Readable
from services.shared.objectstore.keys import ObjectKey, check_slug, object_key, parse_key
from services.shared.objectstore.port import DEFAULT_CONTENT_TYPE, ObjectCorruptedError, StoredObject

_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}(;[ -~]{0,200})?")
"""``type/subtype[; params]`` in printable ASCII: no CR/LF can reach an HTTP header or a metadata file."""
_HASH_INLINE_LIMIT = 64 * 1024
"""Bodies larger than this are hashed in a worker thread (hashlib releases the GIL) to keep the loop free."""


class BlobObjectStore:
    """``ObjectStore`` over a ``Blobs`` adapter."""

    def __init__(self, blobs: Blobs) -> None:
        self._blobs = blobs

    @property
    def location(self) -> str:
        return self._blobs.location

    def for_tenant(self, tenant_id: str) -> TenantObjects:
        return TenantObjects(self._blobs, check_slug(tenant_id, "tenant"))


class TenantObjects:
    """One tenant's view: builds keys under its prefix only and treats anyone else's key as absent."""

    def __init__(self, blobs: Blobs, tenant_id: str) -> None:
        self._blobs = blobs
        self._tenant_id = tenant_id

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    async def put(
        self, kind: str, data: bytes | bytearray | memoryview, *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> StoredObject:
        view = memoryview(data).cast("B")
        _check_content_type(content_type)
        check_slug(kind, "kind")
        if len(view) > _HASH_INLINE_LIMIT:
            sha256 = await asyncio.to_thread(_sha256, view)
        else:
            sha256 = _sha256(view)
        key = object_key(self._tenant_id, kind, sha256)
        stored, _ = await asyncio.to_thread(self._put, key, len(view), content_type, lambda: BufferReader(view))
        return stored

    async def put_file(self, kind: str, path: Path, *, content_type: str = DEFAULT_CONTENT_TYPE) -> StoredObject:
        _check_content_type(content_type)
        check_slug(kind, "kind")
        sha256, size = await asyncio.to_thread(_hash_file, path)
        key = object_key(self._tenant_id, kind, sha256)
        return await asyncio.to_thread(self._put_file, key, size, content_type, path)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, self._own(key))

    async def download(self, key: str, dest: Path) -> StoredObject:
        return await asyncio.to_thread(self._download, self._own(key), dest)

    async def stat(self, key: str) -> StoredObject | None:
        try:
            parsed = self._own(key)
        except NotFoundError:
            return None
        stat = await asyncio.to_thread(self._blobs.stat, parsed)
        return None if stat is None else _stored(parsed, stat)

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    def _own(self, key: str) -> ObjectKey:
        """The parsed key if it is this tenant's. Another tenant's key reads as absent, with the same message
        as a missing object, so a view cannot even learn that it exists."""
        parsed = parse_key(key)
        if parsed.tenant_id != self._tenant_id:
            raise NotFoundError(f"object {key!r} not found", key=key)
        return parsed

    # Blocking helpers, run in a worker thread.

    def _put(
        self, key: ObjectKey, size: int, content_type: str, reader: Callable[[], Readable]
    ) -> tuple[StoredObject, bool]:
        """The stored object, and whether it had to be written (False: these bytes were already there)."""
        existing = self._blobs.stat(key)
        if existing is not None and existing.size == size:
            return _stored(key, existing), False  # content addressing makes a repeated put a no-op
        self._blobs.write(key, ExactReader(reader(), size), size, content_type)
        return StoredObject(key=str(key), sha256=key.sha256, size=size, content_type=content_type), True

    def _put_file(self, key: ObjectKey, size: int, content_type: str, path: Path) -> StoredObject:
        """Upload what was hashed, hashing it again on the way: a file that changed after the first pass (a
        writer still appending) would otherwise be stored under a key that does not match its bytes."""
        with path.open("rb") as file:
            hashing = HashingReader(file)
            try:
                stored, written = self._put(key, size, content_type, lambda: hashing)
            except EOFError as exc:
                raise _changed(path) from exc  # the file shrank under the upload
        if written and (hashing.size != size or hashing.hash.hexdigest() != key.sha256):
            with contextlib.suppress(NotFoundError):
                self._blobs.remove(key)
            raise _changed(path)
        return stored

    def _get(self, key: ObjectKey) -> bytes:
        with self._blobs.open(key) as blob:
            data = blob.read()  # one buffer: a chunked read would hold the object twice while joining
        _verify(key, hashlib.sha256(data).hexdigest(), self._blobs.location)
        return data

    def _download(self, key: ObjectKey, dest: Path) -> StoredObject:
        """Write into a temporary file beside ``dest`` and rename it only once the hash matched, so ``dest`` is
        either the verified object or what it was before."""
        hasher = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, self._blobs.open(key) as blob:
                stat = blob.stat
                while chunk := blob.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            _verify(key, hasher.hexdigest(), self._blobs.location)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)
        return _stored(key, stat)


def _changed(path: Path) -> ContractViolationError:
    return ContractViolationError(f"{path} changed while it was being stored; nothing was kept", path=str(path))


def _stored(key: ObjectKey, stat: BlobStat) -> StoredObject:
    return StoredObject(key=str(key), sha256=key.sha256, size=stat.size, content_type=stat.content_type)


def _verify(key: ObjectKey, digest: str, location: str) -> None:
    if digest != key.sha256:
        raise ObjectCorruptedError(f"object {key} in {location} is corrupt: its bytes hash to {digest}", key=str(key))


def _check_content_type(content_type: str) -> None:
    if _CONTENT_TYPE.fullmatch(content_type) is None:
        raise ContractViolationError(f"invalid content type {content_type[:80]!r}", field="content_type")


def _sha256(data: memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK):
                hasher.update(chunk)
                size += len(chunk)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no file {path} to store", path=str(path)) from exc
    return hasher.hexdigest(), size
