"""From bytes to a typed artifact, or an ``ArtifactError`` that says what is wrong and where.

The typed decode is attempted first and alone: it is the only full pass over the bytes on the happy path.
Only when it fails is the input looked at again (its ``metadata`` alone) to tell "this is a catalog, not a
manifest" or "unknown schema version" apart from a genuine shape error, whose JSON path msgspec reports.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from contracts.dbt import NEWEST_VERSION
from contracts.dbt.metadata import Header, Metadata
from contracts.graph import ArtifactInfo
from services.shared.errors import ArtifactError

T = TypeVar("T")

Buffer = bytes | bytearray | memoryview
"""What the readers accept. An ``mmap`` works too (as itself or as ``memoryview(mmap)``): msgspec reads any
buffer, and nothing returned keeps a reference into it, so the map can be closed afterwards."""

_SCHEMA_URL = re.compile(r"/dbt/(?P<kind>[a-z-]+)/v(?P<version>[0-9]{1,4})\.json\Z")

KIND_NAMES: dict[str, str] = {
    "manifest": "manifest",
    "catalog": "catalog",
    "run-results": "run_results",
    "sources": "sources",
}
"""The kind segment of ``dbt_schema_version`` -> the name Lockgate uses (``ArtifactInfo.kind``)."""

_header = msgspec.json.Decoder(Header)


def decode(data: Buffer, decoder: msgspec.json.Decoder[T], kind: str) -> T:
    """Decode ``data`` (a ``KIND_NAMES`` key) with ``decoder``, turning every failure into ``ArtifactError``."""
    name = KIND_NAMES[kind]
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _explain(data, kind, exc) from exc
    except msgspec.DecodeError as exc:
        raise ArtifactError(f"{name} is not valid JSON: {exc}", artifact=name) from exc
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{name} is not valid UTF-8: {exc}", artifact=name) from exc
    except RecursionError as exc:
        raise ArtifactError(f"{name} nests JSON deeper than the decoder allows", artifact=name) from exc


def _explain(data: Buffer, kind: str, exc: msgspec.ValidationError) -> ArtifactError:
    name = KIND_NAMES[kind]
    try:
        metadata = _header.decode(data).metadata
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        metadata = None
    if metadata is not None:
        schema_version(kind, metadata)  # raises for the wrong kind or a missing/garbled version
    return ArtifactError(f"{name} does not match dbt's {name} schema: {exc}", artifact=name)


def schema_version(kind: str, metadata: Metadata) -> tuple[int, tuple[str, ...]]:
    """The schema version of an artifact that should be ``kind``, and the warnings it earns.

    Versions above the newest known one are read as the newest (dbt only adds fields within a kind; the
    lenient Structs ignore what they do not know), with a warning. Anything else that does not name a
    known version of ``kind`` is refused.
    """
    name = KIND_NAMES[kind]
    url = metadata.dbt_schema_version
    if not url:
        raise ArtifactError(f"{name}: metadata.dbt_schema_version is missing", artifact=name)
    match = _SCHEMA_URL.search(url)
    if match is None:
        raise ArtifactError(f"{name}: metadata.dbt_schema_version {url!r} is not a dbt schema URL", artifact=name)
    found, version = match["kind"], int(match["version"])
    if found != kind:
        what = KIND_NAMES.get(found, found)
        raise ArtifactError(f"expected a {name}, got a {what} (dbt_schema_version {url!r})", artifact=name)
    newest = NEWEST_VERSION[kind]
    if version < 1:
        raise ArtifactError(f"{name}: unknown schema version {url!r}", artifact=name)
    if version > newest:
        return version, (
            f"{name} schema v{version} is newer than v{newest}, the newest Lockgate knows: read as v{newest}",
        )
    return version, ()


def artifact_info(kind: str, metadata: Metadata, version: int, command: str | None = None) -> ArtifactInfo:
    return ArtifactInfo(
        kind=KIND_NAMES[kind],
        schema_version=version,
        dbt_schema_version=metadata.dbt_schema_version or "",
        dbt_version=metadata.dbt_version,
        adapter_type=metadata.adapter_type,
        project_name=metadata.project_name,
        project_id=metadata.project_id,
        invocation_id=metadata.invocation_id,
        generated_at=metadata.generated_at,
        command=command,
    )
