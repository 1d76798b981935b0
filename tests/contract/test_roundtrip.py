"""Property tests: every event type, the envelope and the NATS wire format survive encode -> decode unchanged.

Event types come from the process-wide registry after importing every ``contracts.events.*`` module (so a new
context is covered without touching this file), plus test-only types with awkward field types.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import contracts.events
from contracts.base import Event, parse_tag, tag_of
from contracts.envelope import Actor, Metadata, Position, RecordedEvent
from contracts.ids import SLUG_PATTERN
from contracts.registry import REGISTRY, EventRegistry
from contracts.wire import decode_wire, encode_wire


def import_all_event_modules() -> list[str]:
    names = []
    for module in pkgutil.walk_packages(contracts.events.__path__, prefix="contracts.events."):
        importlib.import_module(module.name)
        names.append(module.name)
    return names


import_all_event_modules()


class Nested(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    weights: dict[str, int] = {}


class Everything(Event, frozen=True, kw_only=True, tag="lgtest.everything.v1"):
    """Field types that are easy to get wrong on a JSON round trip."""

    text: str
    number: int
    ratio: float
    flag: bool
    when: datetime
    ident: uuid.UUID
    amount: Decimal
    raw: bytes
    maybe: str | None = None
    kind: Literal["a", "b"] = "a"
    tags: tuple[str, ...] = ()
    nested: Nested | None = None
    many: list[Nested] = msgspec.field(default_factory=list)
    mapping: dict[str, str | int | bool] = msgspec.field(default_factory=dict)
    slug: Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN)] = "a"
    small: Annotated[int, msgspec.Meta(ge=0, le=10)] = 0
    aware: Annotated[datetime, msgspec.Meta(tz=True)] = datetime(2024, 1, 1, tzinfo=UTC)
    short: Annotated[str, msgspec.Meta(min_length=1, max_length=3)] = "abc"


class Empty(Event, frozen=True, kw_only=True, tag="lgtest.empty.v1"):
    pass


class RenamedV1(Event, frozen=True, kw_only=True, tag="lgtest.renamed.v1"):
    name: str


class RenamedV2(Event, frozen=True, kw_only=True, tag="lgtest.renamed.v2"):
    new_name: str
    previous_name: str | None = None


LOCAL = EventRegistry()
LOCAL.register(Everything, Empty)
LOCAL.register_upcaster(RenamedV1, RenamedV2, lambda old: RenamedV2(new_name=old.name))

CURRENT_TAGS = REGISTRY.current_tags()
ALL_TAGS = sorted(REGISTRY.tags)


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=8,
)
"""``Any`` in an event is free-form YAML from a dbt project (``meta``, ``config``): any JSON value."""


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:  # noqa: PLR0911, PLR0912 - one branch per kind of type
    """``st.from_type`` for the leaves; Structs, containers and ``Meta`` constraints are built here.

    ``st.from_type`` on a Struct passes msgspec's default factories as values and ignores ``Meta`` constraints,
    so Structs are built field by field (optional fields sometimes left to their defaults).
    """
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return JSON_VALUES
    if origin is Annotated:
        return constrained(args[0], [m for m in args[1:] if isinstance(m, msgspec.Meta)])
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        required: dict[str, st.SearchStrategy[Any]] = {}
        optional: dict[str, st.SearchStrategy[Any]] = {}
        for field in msgspec.structs.fields(tp):
            target = required if field.required else optional
            target[field.name] = strategy_for(field.type)
        return st.fixed_dictionaries(required, optional=optional).map(lambda kw: tp(**kw))
    if origin in (Union, UnionType):
        return st.one_of(*(strategy_for(a) for a in args))
    if origin is Literal:
        return st.sampled_from(args)
    if origin is list:
        return st.lists(strategy_for(args[0]), max_size=4)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0]), max_size=4).map(tuple)
    if origin is tuple:
        return st.tuples(*(strategy_for(a) for a in args))
    if origin in (set, frozenset):
        return st.frozensets(strategy_for(args[0]), max_size=4).map(origin)
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=4)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is Decimal:
        return st.decimals(allow_nan=False, allow_infinity=False)
    return st.from_type(tp)


def constrained(base: Any, metas: list[msgspec.Meta]) -> st.SearchStrategy[Any]:
    limits: dict[str, Any] = {}
    for meta in metas:
        for name in ("pattern", "min_length", "max_length", "ge", "gt", "le", "lt", "tz"):
            if getattr(meta, name) is not None:
                limits[name] = getattr(meta, name)
    if base is str and "pattern" in limits:
        strategy: st.SearchStrategy[Any] = st.from_regex(limits["pattern"])
    elif base is str:
        strategy = st.text(min_size=limits.get("min_length", 0), max_size=limits.get("max_length"))
    elif base is int:
        low = limits.get("ge", limits["gt"] + 1 if "gt" in limits else None)
        high = limits.get("le", limits["lt"] - 1 if "lt" in limits else None)
        strategy = st.integers(min_value=low, max_value=high)
    elif base is datetime and "tz" in limits:
        strategy = st.datetimes(timezones=st.just(UTC)) if limits["tz"] else st.datetimes()
    else:
        strategy = strategy_for(base)
    annotated = Annotated[(base, *metas)]
    return strategy.filter(lambda value: _accepted(value, annotated))


def _accepted(value: Any, annotated: Any) -> bool:
    try:
        msgspec.json.decode(msgspec.json.encode(value), type=annotated)
    except (msgspec.DecodeError, msgspec.EncodeError):
        return False
    return True


def valid(value: msgspec.Struct) -> bool:
    """Keep the values the type accepts on decode (constraints that the strategies above could not express)."""
    try:
        return msgspec.json.decode(msgspec.json.encode(value), type=type(value)) == value
    except (msgspec.DecodeError, msgspec.EncodeError, ArithmeticError):
        return False


def round_trip(registry: EventRegistry, event: Event) -> Event:
    return registry.decode(tag_of(type(event)), registry.encode(event))


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def test_every_event_module_is_imported() -> None:
    on_disk = {p.stem for p in Path(contracts.events.__path__[0]).glob("*.py") if p.stem != "__init__"}
    assert {name.rsplit(".", 1)[1] for name in import_all_event_modules()} >= on_disk


@pytest.mark.parametrize("tag", CURRENT_TAGS)
@PROPERTY
@given(data=st.data())
def test_every_registered_event_round_trips(tag: str, data: st.DataObject) -> None:
    event_type = REGISTRY.type_for(tag)
    event = data.draw(strategy_for(event_type), label=tag)
    assume(valid(event))
    decoded = round_trip(REGISTRY, event)
    assert type(decoded) is event_type
    assert decoded == event


OLD_VERSIONS = [(REGISTRY, tag) for tag in sorted(set(ALL_TAGS) - set(CURRENT_TAGS))] + [(LOCAL, "lgtest.renamed.v1")]


@pytest.mark.parametrize(("registry", "tag"), OLD_VERSIONS, ids=[tag for _, tag in OLD_VERSIONS])
@PROPERTY
@given(data=st.data())
def test_old_versions_decode_to_the_current_version(registry: EventRegistry, tag: str, data: st.DataObject) -> None:
    event = data.draw(strategy_for(registry.type_for(tag)), label=tag)
    assume(valid(event))
    decoded = round_trip(registry, event)
    old, new = parse_tag(tag), parse_tag(tag_of(type(decoded)))
    assert (new.context, new.name) == (old.context, old.name)
    assert new.version > old.version
    assert str(new) in registry.current_tags()


@pytest.mark.parametrize("event_type", [Everything, Empty])
@PROPERTY
@given(data=st.data())
def test_awkward_field_types_round_trip(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(strategy_for(event_type))
    assume(valid(event))
    assert round_trip(LOCAL, event) == event


@PROPERTY
@given(metadata=strategy_for(Metadata))
def test_metadata_round_trips(metadata: Metadata) -> None:
    assume(valid(metadata))
    assert msgspec.json.decode(msgspec.json.encode(metadata), type=Metadata) == metadata


INT64 = st.integers(min_value=0, max_value=2**63 - 1)
AWARE = st.datetimes(timezones=st.just(UTC))


@st.composite
def recorded_events(draw: st.DrawFn) -> RecordedEvent:
    payload = draw(st.one_of(strategy_for(Everything), strategy_for(Empty)))
    assume(valid(payload))
    tag = tag_of(type(payload))
    return RecordedEvent(
        event_id=draw(st.uuids()),
        type=tag,
        schema_version=parse_tag(tag).version,
        stream_id=draw(st.text(min_size=1)),
        version=draw(st.integers(min_value=1, max_value=2**31 - 1)),
        position=Position(draw(INT64), draw(INT64)),
        tenant_id=draw(st.text(min_size=1)),
        metadata=draw(strategy_for(Metadata).filter(valid)),
        occurred_at=draw(AWARE),
        recorded_at=draw(AWARE),
        payload=payload,
    )


@PROPERTY
@given(recorded=recorded_events())
def test_the_wire_format_round_trips(recorded: RecordedEvent) -> None:
    body = encode_wire(recorded, LOCAL)
    wire = decode_wire(body)
    assert wire.position == recorded.position
    assert msgspec.json.decode(bytes(wire.data)) == msgspec.json.decode(LOCAL.encode(recorded.payload))
    assert wire.to_recorded(LOCAL) == recorded


def test_the_wire_keeps_an_unknown_event_type_readable_by_its_envelope() -> None:
    recorded = RecordedEvent(
        event_id=uuid.uuid4(),
        type="lgtest.empty.v1",
        schema_version=1,
        stream_id="thing-1",
        version=1,
        position=Position(5, 7),
        tenant_id="acme",
        metadata=Metadata(actor=Actor(subject="user:a"), correlation_id=uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        recorded_at=datetime.now(UTC),
        payload=Empty(),
    )
    wire = decode_wire(encode_wire(recorded, LOCAL))
    assert (wire.type, wire.stream_id, wire.position) == ("lgtest.empty.v1", "thing-1", Position(5, 7))
    from contracts.registry import UnknownEventTypeError  # noqa: PLC0415

    with pytest.raises(UnknownEventTypeError):
        wire.to_recorded(EventRegistry())


def test_a_malformed_wire_message_is_a_msgspec_error() -> None:
    good: dict[str, Any] = msgspec.json.decode(
        encode_wire(
            RecordedEvent(
                event_id=uuid.uuid4(),
                type="lgtest.empty.v1",
                schema_version=1,
                stream_id="thing-1",
                version=1,
                position=Position(1, 1),
                tenant_id="acme",
                metadata=Metadata(actor=Actor(subject="u"), correlation_id=uuid.uuid4()),
                occurred_at=datetime.now(UTC),
                recorded_at=datetime.now(UTC),
                payload=Empty(),
            ),
            LOCAL,
        )
    )
    for field in ("event_id", "type", "tenant_id", "metadata", "data"):
        broken = {k: v for k, v in good.items() if k != field}
        with pytest.raises(msgspec.ValidationError, match=f"missing required field `{field}`"):
            decode_wire(msgspec.json.encode(broken))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.version"):
        decode_wire(msgspec.json.encode({**good, "version": "one"}))
    with pytest.raises(msgspec.DecodeError):
        decode_wire(b'{"event_id": ')
