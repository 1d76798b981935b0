"""The event registry: tags, encode/decode, upcasting, and the errors a reader gets for bad stored data.

Every test uses a private ``EventRegistry`` so that nothing test-only leaks into the process-wide one.
"""

from __future__ import annotations

import uuid
from typing import cast

import msgspec
import pytest

from contracts.base import Event, parse_tag, tag_of
from contracts.registry import EventDecodeError, EventRegistry, UnknownEventTypeError


class Item(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    qty: int


class OrderPlaced(Event, frozen=True, kw_only=True, tag="shop.order_placed.v1"):
    order_id: uuid.UUID
    items: tuple[Item, ...]
    note: str | None = None


class Pinged(Event, frozen=True, kw_only=True, tag="shop.pinged.v1"):
    pass


class RenamedV1(Event, frozen=True, kw_only=True, tag="shop.renamed.v1"):
    name: str


class RenamedV2(Event, frozen=True, kw_only=True, tag="shop.renamed.v2"):
    new_name: str
    previous_name: str | None = None


class RenamedV3(Event, frozen=True, kw_only=True, tag="shop.renamed.v3"):
    new_name: str
    previous_name: str | None
    reason: str


def v1_to_v2(old: RenamedV1) -> RenamedV2:
    return RenamedV2(new_name=old.name)


def v2_to_v3(old: RenamedV2) -> RenamedV3:
    return RenamedV3(new_name=old.new_name, previous_name=old.previous_name, reason="(before v3)")


@pytest.fixture
def registry() -> EventRegistry:
    reg = EventRegistry()
    reg.register(OrderPlaced, Pinged)
    return reg


# -- tags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "shop",
        "shop.order_placed",  # no version
        "shop.order_placed.1",  # version without 'v'
        "shop.order_placed.v0",  # versions start at 1
        "shop.order_placed.v01",  # no leading zero
        "shop.order_placed.V1",
        "Shop.order_placed.v1",  # contexts are lower case
        "shop.OrderPlaced.v1",  # names are snake case
        "shop.order-placed.v1",
        "shop..v1",
        ".order_placed.v1",
        "shop.order_placed.v1.extra",
        "shop.order placed.v1",
        "1shop.order_placed.v1",
        "shop.order_placed.v1\n",
        " shop.order_placed.v1",
        "shop.ördér.v1",
    ],
)
def test_registry_refuses_a_malformed_tag(tag: str) -> None:
    struct = msgspec.defstruct("Bad", [("x", int)], bases=(Event,), tag=tag, frozen=True, kw_only=True)
    bad = cast("type[Event]", struct)
    reg = EventRegistry()
    with pytest.raises(ValueError, match="does not match"):
        reg.register(bad)
    assert not reg.is_known(tag)


@pytest.mark.parametrize("tag", ["shop.order_placed.v1", "a.b.v1", "ctx_2.name_3.v12"])
def test_parse_tag_accepts_well_formed_tags(tag: str) -> None:
    assert str(parse_tag(tag)) == tag


def test_registry_refuses_an_event_without_an_explicit_tag() -> None:
    class Untagged(Event, frozen=True, kw_only=True):
        x: int

    # msgspec falls back to the class name as the tag, which is not a wire tag.
    with pytest.raises(ValueError, match="'Untagged' does not match"):
        EventRegistry().register(Untagged)


def test_registry_refuses_a_duplicate_tag(registry: EventRegistry) -> None:
    class Impostor(Event, frozen=True, kw_only=True, tag="shop.order_placed.v1"):
        something_else: int

    with pytest.raises(ValueError, match="already taken by OrderPlaced"):
        registry.register(Impostor)
    assert registry.type_for("shop.order_placed.v1") is OrderPlaced


def test_registering_the_same_type_twice_is_harmless(registry: EventRegistry) -> None:
    registry.register(OrderPlaced)
    assert registry.type_for("shop.order_placed.v1") is OrderPlaced
    assert sorted(registry.tags) == ["shop.order_placed.v1", "shop.pinged.v1"]


def test_type_for_an_unknown_tag(registry: EventRegistry) -> None:
    with pytest.raises(UnknownEventTypeError) as info:
        registry.type_for("shop.nothing.v1")
    assert info.value.tag == "shop.nothing.v1"


# -- encode / decode -------------------------------------------------------------------------------


def test_encode_leaves_the_tag_to_its_own_column(registry: EventRegistry) -> None:
    event = OrderPlaced(order_id=uuid.UUID(int=1), items=(Item(name="a", qty=2),))
    raw = msgspec.json.decode(registry.encode(event))
    assert "type" not in raw
    assert raw == {"order_id": str(uuid.UUID(int=1)), "items": [{"name": "a", "qty": 2}], "note": None}


@pytest.mark.parametrize("event", [Pinged(), OrderPlaced(order_id=uuid.uuid4(), items=(), note="n")])
def test_encode_decode_round_trip(registry: EventRegistry, event: Event) -> None:
    tag = tag_of(type(event))
    assert registry.decode(tag, registry.encode(event)) == event
    assert registry.decode(tag, registry.encode(event).decode()) == event  # str, as asyncpg returns jsonb text


@pytest.mark.parametrize("body", ["{}", " { } ", "\n{\n}\n", "{ }"])
def test_decode_an_empty_object(registry: EventRegistry, body: str) -> None:
    assert registry.decode("shop.pinged.v1", body) == Pinged()


def test_decode_accepts_whitespace_and_any_key_order(registry: EventRegistry) -> None:
    oid = uuid.uuid4()
    body = f'  {{ "items" : [ {{"qty": 1, "name": "x"}} ] ,\n "order_id": "{oid}" }}'
    assert registry.decode("shop.order_placed.v1", body) == OrderPlaced(order_id=oid, items=(Item(name="x", qty=1),))


def test_decode_of_an_unknown_tag(registry: EventRegistry) -> None:
    with pytest.raises(UnknownEventTypeError, match=r"shop\.refunded\.v1"):
        registry.decode("shop.refunded.v1", b"{}")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"order_id": 5, "items": []}', "$.order_id"),
        ('{"order_id": "not-a-uuid", "items": []}', "$.order_id"),
        (f'{{"order_id": "{uuid.UUID(int=1)}"}}', "missing required field `items`"),
        (f'{{"order_id": "{uuid.UUID(int=1)}", "items": [{{"name": "a", "qty": 1}}, {{"name": 7}}]}}', "$.items[1]"),
        (f'{{"order_id": "{uuid.UUID(int=1)}", "items": [], "note": 3}}', "$.note"),
    ],
)
def test_decode_of_a_malformed_payload_names_the_json_path(registry: EventRegistry, body: str, path: str) -> None:
    with pytest.raises(EventDecodeError) as info:
        registry.decode("shop.order_placed.v1", body)
    message = str(info.value)
    assert message.startswith("shop.order_placed.v1: ")
    assert path in message


@pytest.mark.parametrize("body", ["[]", '"x"', "5", "null", "", "   "])
def test_decode_of_a_payload_that_is_not_an_object(registry: EventRegistry, body: str) -> None:
    with pytest.raises(EventDecodeError, match=r"^shop\.pinged\.v1: (Expected `object`, got|Input data was truncated)"):
        registry.decode("shop.pinged.v1", body)


@pytest.mark.parametrize("body", ['{"order_id": ', "{,}", '{"a" 1}', "{\x00}"])
def test_decode_of_broken_json_is_a_decode_error(registry: EventRegistry, body: str) -> None:
    # Broken JSON must not leak msgspec's own exception type to callers that catch EventDecodeError.
    with pytest.raises(EventDecodeError, match=r"shop\.order_placed\.v1"):
        registry.decode("shop.order_placed.v1", body)


# -- upcasting -------------------------------------------------------------------------------------


def test_upcaster_turns_an_old_event_into_the_current_one() -> None:
    reg = EventRegistry()
    reg.register_upcaster(RenamedV1, RenamedV2, v1_to_v2)
    assert reg.decode("shop.renamed.v1", '{"name": "old"}') == RenamedV2(new_name="old")
    assert reg.decode("shop.renamed.v2", '{"new_name": "n", "previous_name": "p"}') == RenamedV2(
        new_name="n", previous_name="p"
    )
    assert reg.current_tags() == ["shop.renamed.v2"]
    assert set(reg.tags) == {"shop.renamed.v1", "shop.renamed.v2"}


def test_upcasters_chain_to_the_newest_version() -> None:
    reg = EventRegistry()
    reg.register_upcaster(RenamedV2, RenamedV3, v2_to_v3)
    reg.register_upcaster(RenamedV1, RenamedV2, v1_to_v2)  # registration order does not matter
    assert reg.decode("shop.renamed.v1", '{"name": "old"}') == RenamedV3(
        new_name="old", previous_name=None, reason="(before v3)"
    )
    assert reg.current_tags() == ["shop.renamed.v3"]


def test_an_old_payload_is_validated_against_its_own_version() -> None:
    reg = EventRegistry()
    reg.register_upcaster(RenamedV1, RenamedV2, v1_to_v2)
    with pytest.raises(EventDecodeError, match=r"shop\.renamed\.v1: .*\$\.name"):
        reg.decode("shop.renamed.v1", '{"name": 1}')


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (RenamedV1, RenamedV3),  # skips a version
        (RenamedV2, RenamedV1),  # backwards
        (RenamedV1, RenamedV1),
        (Pinged, RenamedV2),  # another event
    ],
)
def test_upcaster_goes_from_one_version_to_the_next_of_one_event(old: type[Event], new: type[Event]) -> None:
    reg = EventRegistry()
    with pytest.raises(ValueError, match="one version to the next"):
        reg.register_upcaster(old, new, v1_to_v2)
    assert not reg.is_known(tag_of(old))


def test_upcaster_across_contexts_is_refused() -> None:
    class OtherV2(Event, frozen=True, kw_only=True, tag="other.renamed.v2"):
        new_name: str

    with pytest.raises(ValueError, match="one version to the next"):
        EventRegistry().register_upcaster(RenamedV1, OtherV2, v1_to_v2)
