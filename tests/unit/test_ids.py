"""Identifiers: slugs, ``<category>-<id>`` stream ids and UUIDv7 event ids."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.ids import SLUG_PATTERN, category_of, is_slug, new_uuid, stream_id

SLUGS = st.from_regex(SLUG_PATTERN, fullmatch=True)


@pytest.mark.parametrize("value", ["a", "acme", "acme_2", "0", "a" * 63, "default"])
def test_slugs_accepted(value: str) -> None:
    assert is_slug(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a" * 64,  # too long for a NATS token / URL segment budget
        "Acme",  # upper case
        "_acme",  # must start with a letter or digit
        "ac-me",  # '-' separates the category of a stream id
        "ac.me",  # '.' separates NATS subject tokens
        "ac*",
        "ac>",
        "ac me",
        "acme\n",  # a trailing newline must not slip through '$'
        "'; DROP TABLE events; --",
        "ünï",
        "a\x00b",
    ],
)
def test_slugs_refused(value: str) -> None:
    assert not is_slug(value)


@given(category=SLUGS, key=st.text(min_size=1))
def test_stream_id_splits_at_the_first_dash(category: str, key: str) -> None:
    sid = stream_id(category, key)
    assert sid == f"{category}-{key}"
    assert category_of(sid) == category


def test_stream_id_keeps_dashes_in_the_key() -> None:
    key = str(uuid.uuid4())
    sid = stream_id("project", key)
    assert category_of(sid) == "project"
    assert sid.partition("-")[2] == key


@pytest.mark.parametrize("category", ["", "Project", "pro-ject", "a.b", "x" * 64])
def test_stream_id_refuses_a_category_that_is_not_a_slug(category: str) -> None:
    with pytest.raises(ValueError, match="not a slug"):
        stream_id(category, "1")


def test_new_uuid_is_version_7_with_rfc_variant() -> None:
    value = new_uuid()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_new_uuid_carries_the_millisecond_clock() -> None:
    before = time.time_ns() // 1_000_000
    value = new_uuid()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_new_uuids_are_unique_and_time_ordered_across_milliseconds() -> None:
    values = [new_uuid() for _ in range(20_000)]
    assert len(set(values)) == len(values)
    stamps = [v.int >> 80 for v in values]
    assert stamps == sorted(stamps)
    # Within one millisecond the order is random, but a later millisecond always sorts after an earlier one.
    by_ms: dict[int, list[uuid.UUID]] = {}
    for value in values:
        by_ms.setdefault(value.int >> 80, []).append(value)
    groups = [by_ms[ms] for ms in sorted(by_ms)]
    for earlier, later in itertools.pairwise(groups):
        assert max(earlier) < min(later)
