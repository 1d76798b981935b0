"""Objects as files under a root directory: the embedded default (``<home>/objects``).

Layout: ``<root>/<tenant>/<kind>/<xx>/<sha256>`` plus ``<sha256>.type`` holding the content type. Each write
goes to a temporary file in the same directory, is fsynced and renamed over the final name, then the directory
is fsynced: a crash leaves the old state or the new one, never a torn object under a valid key. The sidecar is
renamed before the object, so the object's rename is the commit point.

Paths are walked one segment at a time from a descriptor of the root with ``O_NOFOLLOW`` (``openat``): a
symlink planted anywhere below the root is refused rather than followed out of it, with no check-then-open
race. The root itself may be a symlink; that is the operator's choice.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from services.shared.errors import InfrastructureError, NotFoundError
from services.shared.objectstore.blobs import CHUNK, BlobStat, BufferReader, Readable
from services.shared.objectstore.keys import ObjectKey
from services.shared.objectstore.port import DEFAULT_CONTENT_TYPE
from services.shared.objectstore.store import BlobObjectStore

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a planted FIFO must not hang us
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_TYPE_FILE = 512


class LocalObjectStore(BlobObjectStore):
    def __init__(self, root: Path) -> None:
        super().__init__(LocalBlobs(root))


class _LocalBlob:
    def __init__(self, file: BinaryIO, stat: BlobStat) -> None:
        self._file = file
        self.stat = stat

    def read(self, size: int = -1, /) -> bytes:
        return self._file.read(size)


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self._root = root.absolute()

    @property
    def location(self) -> str:
        return str(self._root)

    def stat(self, key: ObjectKey) -> BlobStat | None:
        try:
            with self._errors(key), self._dir(key, create=False) as fd:
                info = os.stat(key.sha256, dir_fd=fd, follow_symlinks=False)
                self._check_regular(key, info.st_mode)
                return BlobStat(info.st_size, _read_type(fd, key))
        except NotFoundError:
            return None

    @contextlib.contextmanager
    def open(self, key: ObjectKey) -> Iterator[_LocalBlob]:
        with self._errors(key), self._dir(key, create=False) as fd:
            file = os.fdopen(os.open(key.sha256, _READ, dir_fd=fd), "rb")
            content_type = _read_type(fd, key)
        with file:
            info = os.fstat(file.fileno())
            self._check_regular(key, info.st_mode)
            os.set_blocking(file.fileno(), True)
            yield _LocalBlob(file, BlobStat(info.st_size, content_type))

    def write(self, key: ObjectKey, source: Readable, size: int, content_type: str) -> None:
        type_bytes = content_type.encode("ascii")
        with self._errors(key), self._dir(key, create=True) as fd:
            _atomic_write(fd, f"{key.sha256}.type", BufferReader(memoryview(type_bytes)), len(type_bytes))
            _atomic_write(fd, key.sha256, source, size)
            os.fsync(fd)

    def remove(self, key: ObjectKey) -> None:
        with self._errors(key), self._dir(key, create=False) as fd:
            os.unlink(key.sha256, dir_fd=fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{key.sha256}.type", dir_fd=fd)
            os.fsync(fd)

    @contextlib.contextmanager
    def _dir(self, key: ObjectKey, *, create: bool) -> Iterator[int]:
        """A descriptor of the key's directory, reached without following any symlink below the root."""
        if create:
            self._root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for segment in key.parts[:3]:
                if create:
                    try:
                        os.mkdir(segment, 0o755, dir_fd=fd)
                        os.fsync(fd)  # the new entry survives a crash along with the object inside it
                    except FileExistsError:
                        pass
                child = os.open(segment, _DIR, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _errors(self, key: ObjectKey) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {key} not found", key=str(key)) from exc
        except OSError as exc:
            if exc.errno in {errno.ELOOP, errno.ENOTDIR}:
                raise InfrastructureError(
                    f"object store {self.location}: {key} crosses a symlink or a non-directory; refusing to follow it",
                    key=str(key),
                ) from exc
            raise InfrastructureError(f"object store {self.location}: {key}: {exc.strerror}", key=str(key)) from exc

    def _check_regular(self, key: ObjectKey, mode: int) -> None:
        if not stat.S_ISREG(mode):
            raise InfrastructureError(f"object store {self.location}: {key} is not a regular file", key=str(key))


def _read_type(dir_fd: int, key: ObjectKey) -> str:
    """The sidecar's content type; the default if it is missing or unreadable (it is only descriptive)."""
    try:
        fd = os.open(f"{key.sha256}.type", _READ, dir_fd=dir_fd)
    except OSError:
        return DEFAULT_CONTENT_TYPE
    try:
        return os.read(fd, _MAX_TYPE_FILE).decode("ascii").strip() or DEFAULT_CONTENT_TYPE
    except (OSError, UnicodeDecodeError):
        return DEFAULT_CONTENT_TYPE
    finally:
        os.close(fd)


def _atomic_write(dir_fd: int, name: str, source: Readable, size: int) -> None:
    """Copy exactly ``size`` bytes into a temporary file, fsync it and rename it over ``name``."""
    tmp = f".tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, _CREATE, 0o644, dir_fd=dir_fd)
    try:
        try:
            remaining = size
            while remaining:
                chunk = source.read(min(CHUNK, remaining))
                if not chunk:
                    raise EOFError(f"the source ended {remaining} bytes early")  # the port's contract for write
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                remaining -= len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
