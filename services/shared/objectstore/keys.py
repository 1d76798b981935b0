"""Object keys: ``<tenant>/<kind>/<sha256[:2]>/<sha256>``.

A key is derived from the content (its SHA-256) and prefixed by its tenant, so the same bytes are stored once
per tenant and kind, and a key can be checked against its bytes on every read. Keys come back from callers
(API paths, event payloads), so parsing is strict and total: the only keys accepted are exactly the ones
``object_key`` builds. Every segment is a slug or lower-case hex, which rules out ``..``, absolute paths,
backslashes, NUL and any other separator before a key gets near a file system or an S3 URL.
"""

from __future__ import annotations

import re

import msgspec

from contracts.ids import is_slug
from services.shared.errors import ContractViolationError

MAX_KEY_LENGTH = 63 + 1 + 63 + 1 + 2 + 1 + 64
"""The longest well-formed key (two 63-character slugs); anything longer is refused before it is parsed."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ObjectKey(msgspec.Struct, frozen=True):
    tenant_id: str
    kind: str
    sha256: str

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.kind}/{self.sha256[:2]}/{self.sha256}"

    @property
    def parts(self) -> tuple[str, str, str, str]:
        """The path segments, each a slug or hex: safe as directory names and S3 key segments."""
        return self.tenant_id, self.kind, self.sha256[:2], self.sha256


def check_slug(value: str, what: str) -> str:
    if not is_slug(value):
        raise ContractViolationError(
            f"{what} {value[:80]!r} is not a valid slug: 1-63 characters of a-z, 0-9 and '_'", field=what
        )
    return value


def object_key(tenant_id: str, kind: str, sha256: str) -> ObjectKey:
    check_slug(tenant_id, "tenant")
    check_slug(kind, "kind")
    if _SHA256.fullmatch(sha256) is None:
        raise ContractViolationError(f"{sha256[:80]!r} is not a lower-case hex SHA-256", field="sha256")
    return ObjectKey(tenant_id, kind, sha256)


def parse_key(key: str) -> ObjectKey:
    """The key, if it is exactly one ``object_key`` can build; else ``ContractViolationError``."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ContractViolationError(
            f"an object key is a non-empty string of at most {MAX_KEY_LENGTH} characters", field="key"
        )
    segments = key.split("/")
    if len(segments) != 4:  # tenant/kind/shard/sha256
        raise ContractViolationError(
            f"malformed object key {key!r}: expected <tenant>/<kind>/<xx>/<sha256>", field="key"
        )
    tenant_id, kind, shard, sha256 = segments
    try:
        parsed = object_key(tenant_id, kind, sha256)
    except ContractViolationError as exc:
        raise ContractViolationError(f"malformed object key {key!r}: {exc.message}", field="key") from exc
    if shard != sha256[:2]:
        raise ContractViolationError(
            f"malformed object key {key!r}: shard is not the hash's first two digits", field="key"
        )
    return parsed
