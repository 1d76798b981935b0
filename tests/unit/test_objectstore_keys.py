"""Object keys: only keys ``object_key`` builds parse, and no text whatever gets a tenant's view to touch a
path outside that tenant's prefix (nor the local adapter outside its root)."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from contextlib import AbstractContextManager

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from contracts.ids import SLUG_PATTERN
from services.shared.errors import ContractViolationError, NotFoundError
from services.shared.objectstore.blobs import Blob, BlobStat, Readable
from services.shared.objectstore.keys import MAX_KEY_LENGTH, ObjectKey, object_key, parse_key
from services.shared.objectstore.store import BlobObjectStore

SLUGS = st.from_regex(SLUG_PATTERN, fullmatch=True)
SHA256 = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
KEYS = st.builds(object_key, SLUGS, SLUGS, SHA256)
ROOT = "/srv/lockgate/objects"

# Text that looks like keys: separators, dots, escapes and hex in every combination.
KEYISH = st.text(alphabet=st.sampled_from(list("ab01f/.\\\x00 \n%:~_A")), max_size=120)
SEGMENTED = st.lists(st.one_of(SLUGS, SHA256, st.sampled_from(["..", ".", "", "ab", "~", "%2e%2e"])), max_size=6).map(
    "/".join
)
MUTATED = st.builds(
    lambda key, at, insert: str(key)[:at] + insert + str(key)[at:],
    KEYS,
    st.integers(min_value=0, max_value=MAX_KEY_LENGTH),
    st.sampled_from(["/..", "../", "/", "\\", "\x00", "%2f", "/./", "A", ""]),
)
"""Well-formed keys with one hostile insertion (or none: some must still parse)."""
ANY_TEXT = st.one_of(st.text(max_size=400), KEYISH, SEGMENTED, MUTATED)


def test_key_layout() -> None:
    digest = "ab" * 32
    key = object_key("acme", "manifest", digest)
    assert str(key) == f"acme/manifest/ab/{digest}"
    assert key.parts == ("acme", "manifest", "ab", digest)
    assert parse_key(str(key)) == key


def test_over_long_key_is_refused_before_parsing() -> None:
    with pytest.raises(ContractViolationError, match=str(MAX_KEY_LENGTH)):
        parse_key("a/" * 100_000)


@given(KEYS)
def test_every_built_key_parses_back_and_fits_the_length_limit(key: ObjectKey) -> None:
    assert parse_key(str(key)) == key
    assert len(str(key)) <= MAX_KEY_LENGTH


@given(ANY_TEXT)
def test_arbitrary_text_is_refused_or_is_a_canonical_key_inside_the_root(text: str) -> None:
    try:
        key = parse_key(text)
    except ContractViolationError:
        return
    assert str(key) == text  # nothing was normalised away: what was checked is what is used
    path = posixpath.join(ROOT, *key.parts)
    assert posixpath.normpath(path) == path
    assert path.startswith(f"{ROOT}/{key.tenant_id}/")


class RecordingBlobs:
    """A backend that records every key it is asked about and holds nothing."""

    def __init__(self) -> None:
        self.seen: list[ObjectKey] = []

    @property
    def location(self) -> str:
        return "memory"

    def stat(self, key: ObjectKey) -> BlobStat | None:
        self.seen.append(key)
        return None

    def write(self, key: ObjectKey, source: Readable, size: int, content_type: str) -> None:
        raise AssertionError

    def open(self, key: ObjectKey) -> AbstractContextManager[Blob]:
        self.seen.append(key)
        raise NotFoundError("absent")

    def remove(self, key: ObjectKey) -> None:
        raise AssertionError


@given(tenant=SLUGS, text=ANY_TEXT)
def test_a_tenant_view_passes_only_its_own_well_formed_keys_to_the_backend(tenant: str, text: str) -> None:
    blobs = RecordingBlobs()
    view = BlobObjectStore(blobs).for_tenant(tenant)

    async def probe() -> None:
        for call in (view.stat, view.get):
            with contextlib.suppress(ContractViolationError, NotFoundError):
                await call(text)

    asyncio.run(probe())
    for key in blobs.seen:
        assert key.tenant_id == tenant
        assert str(key) == text
        assert text.startswith(f"{tenant}/")


@given(SLUGS, SLUGS, SHA256)
def test_another_tenants_well_formed_key_never_reaches_the_backend(tenant: str, other: str, digest: str) -> None:
    assume(other != tenant)
    blobs = RecordingBlobs()
    view = BlobObjectStore(blobs).for_tenant(tenant)
    key = str(object_key(other, "manifest", digest))

    async def probe() -> None:
        with pytest.raises(NotFoundError):
            await view.get(key)
        assert await view.stat(key) is None
        assert not await view.exists(key)

    asyncio.run(probe())
    assert blobs.seen == []
