"""Artifact uploads, streamed to disk as they arrive.

A manifest can be hundreds of megabytes: an upload is never held in memory. The request body is read
chunk by chunk and written to files in a private temporary directory, and the size limit
(``Settings.max_upload_bytes``) is enforced while streaming, so an oversized upload is refused with 413 as
soon as it crosses the limit, not after it has been received. Multipart bodies are split with the
``multipart`` package's push parser (the one litestar itself uses), one file per form field.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from litestar import Request
from litestar.exceptions import HTTPException
from multipart import MultipartSegment, ParserError, PushMultipartParser

from services.shared.errors import ContractViolationError

_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?')


class PayloadTooLargeError(HTTPException):
    status_code = 413


async def _limited(request: Request[Any, Any, Any], limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLargeError(detail=f"upload exceeds the limit of {limit} bytes")
        yield chunk


async def spool_body(request: Request[Any, Any, Any], dest: Path, limit: int) -> Path:
    """Write the raw request body to ``dest``."""
    with dest.open("wb") as out:
        async for chunk in _limited(request, limit):
            out.write(chunk)
    return dest


class _Files:
    """Where each form field's bytes go: one file per accepted field, each field at most once."""

    def __init__(self, directory: Path, fields: tuple[str, ...]) -> None:
        self._directory = directory
        self._fields = fields
        self.paths: dict[str, Path] = {}
        self._out: BinaryIO | None = None

    def start(self, name: str) -> None:
        if name not in self._fields:
            raise ContractViolationError(f"unexpected form field {name!r}; expected any of {', '.join(self._fields)}")
        if name in self.paths:
            raise ContractViolationError(f"form field {name!r} given twice")
        self.paths[name] = self._directory / name
        self._out = self.paths[name].open("wb")

    def write(self, data: bytes | bytearray) -> None:
        if self._out is None:
            raise ContractViolationError("malformed multipart body")
        self._out.write(data)

    def end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def spool_multipart(
    request: Request[Any, Any, Any], directory: Path, limit: int, fields: tuple[str, ...]
) -> dict[str, Path]:
    """Write each file field of a multipart body to ``directory/<field>``; only ``fields`` are accepted,
    each at most once."""
    content_type = request.headers.get("content-type", "")
    match = _BOUNDARY.search(content_type)
    if match is None or not content_type.startswith("multipart/form-data"):
        raise ContractViolationError("expected a multipart/form-data upload with a boundary")
    files = _Files(directory, fields)
    try:
        with PushMultipartParser(match.group(1), max_segment_count=len(fields) + 1) as parser:
            async for chunk in _limited(request, limit):
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        files.start(part.name)
                    elif part:
                        files.write(part)
                    else:
                        files.end()
    except ParserError as exc:
        raise ContractViolationError(f"malformed multipart body: {exc}") from exc
    finally:
        files.end()
    return files.paths
