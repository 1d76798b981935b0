"""Golden JSON Schemas: a change to the wire shape of any event or of the envelope must be deliberate.

For every registered event type (every ``contracts.events.*`` module is imported, so a new context is covered
without touching this file) and for the envelope Structs, ``msgspec.json.schema(T)`` must equal the checked-in
file in ``tests/contract/golden/``. Old versions stay registered (stored events are never rewritten), so their
schemas are pinned too. To accept a change deliberately, regenerate and review the diff:

    LOCKGATE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/contract/test_golden_schemas.py
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
import pkgutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

import contracts.events
from contracts.base import Event, parse_tag, tag_of
from contracts.envelope import Metadata
from contracts.registry import REGISTRY
from contracts.wire import WireEvent

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LOCKGATE_UPDATE_GOLDEN") == "1"
REGENERATE = "LOCKGATE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/contract/test_golden_schemas.py"


def import_event_modules() -> list[Any]:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(contracts.events.__path__, prefix="contracts.events.")
    ]


EVENT_MODULES = import_event_modules()

ENVELOPE: dict[str, type[msgspec.Struct]] = {
    "envelope.metadata": Metadata,
    "envelope.wire_event": WireEvent,
}
"""Envelope Structs that travel on the wire, by golden file name (never a wire tag: those end in ``.v<N>``)."""

SCHEMAS: dict[str, type[msgspec.Struct]] = {
    **{tag: REGISTRY.type_for(tag) for tag in sorted(REGISTRY.tags)},
    **ENVELOPE,
}


def schema_of(struct: type[msgspec.Struct]) -> Any:
    # Round trip through JSON so that tuples (msgspec's defaults) compare equal to the lists read from files.
    return json.loads(msgspec.json.encode(msgspec.json.schema(struct)))


def render(schema: Any) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_schema_matches_its_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.json"
    actual = render(schema_of(SCHEMAS[name]))
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(
            f"no golden schema for {name!r} ({SCHEMAS[name].__qualname__}): {path} is missing.\n"
            f"If this is a new event type, create it deliberately with:\n    {REGENERATE}\nand commit the file.",
            pytrace=False,
        )
    expected = path.read_text(encoding="utf-8")
    if json.loads(expected) != json.loads(actual):
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"golden/{name}.json",
                tofile=f"msgspec.json.schema({SCHEMAS[name].__qualname__})",
            )
        )
        pytest.fail(
            f"the wire schema of {name!r} changed:\n{diff}\n"
            "A stored or published event must keep its shape: a new shape is a new version (tag .v<N+1>) plus an "
            "upcaster. If this change is deliberate and safe (e.g. a description), regenerate with:\n"
            f"    {REGENERATE}\nand review the diff before committing.",
            pytrace=False,
        )


def test_no_golden_file_outlives_its_type() -> None:
    # Never deleted automatically, not even when regenerating: a missing import must not erase a contract.
    stale = sorted(p.name for p in GOLDEN.glob("*.json") if p.stem not in SCHEMAS)
    assert not stale, (
        f"golden schemas exist for tags that are no longer registered: {stale}. A tag is never renamed and an old "
        "version stays registered while stored events may carry it; if the type really is gone, delete the file."
    )


def test_golden_directory_holds_only_schema_files() -> None:
    assert GOLDEN.is_dir(), f"{GOLDEN} is missing; create it with: {REGENERATE}"
    others = sorted(p.name for p in GOLDEN.iterdir() if p.suffix != ".json")
    assert not others, f"unexpected files in {GOLDEN}: {others}"


def test_every_event_class_in_contracts_events_is_registered() -> None:
    """An event Struct that someone forgot to register would escape decoding on read and these golden files."""
    unregistered = []
    for module in EVENT_MODULES:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Event) and cls is not Event and cls.__module__ == module.__name__:
                tag = tag_of(cls)
                if not REGISTRY.is_known(tag) or REGISTRY.type_for(tag) is not cls:
                    unregistered.append(f"{module.__name__}.{cls.__qualname__} ({tag})")
    assert not unregistered, f"event types defined but not registered in REGISTRY: {unregistered}"


@pytest.mark.parametrize("name", list(ENVELOPE))
def test_the_envelope_file_names_cannot_collide_with_wire_tags(name: str) -> None:
    with pytest.raises(ValueError, match="does not match"):
        parse_tag(name)
