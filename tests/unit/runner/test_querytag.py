"""The QUERY_TAG macro file rendered the way dbt renders macros, against a pretend Snowflake session.

dbt cuts a macro file into blocks (``extract_toplevel_blocks``) and renders each macro as its own template in
its sandboxed Jinja environment, every macro reachable by name from the context (``CallableMacroGenerator``);
``return`` raises ``MacroReturn``. The test does the same with dbt's own pieces, so it exercises the parsing and
the quoting that matter, without a warehouse (the integration test runs real dbt against the stand-in).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest
from dbt.context.base import BaseContext
from dbt_common.clients._jinja_blocks import BlockTag
from dbt_common.clients.jinja import CallableMacroGenerator, extract_toplevel_blocks
from dbt_common.exceptions.macros import MacroReturn
from hypothesis import given
from hypothesis import strategies as st

from services.runner.querytag import (
    MAX_TAG_CHARS,
    OVERRIDDEN_MACROS,
    QueryTagTooLongError,
    node_query_tag,
    query_tag_macro,
    run_query_tag,
)
from tests.snowflake import snowflake_string_value

RUN_ID = uuid.UUID("0190a3c2-0000-7000-8000-000000000001")
ORDERS_UUID = uuid.UUID("0190a3c2-0000-7000-8000-0000000000aa")
NODES = {"model.shop.orders": ORDERS_UUID, "seed.shop.raw_orders": uuid.uuid4()}
PROFILE_TAG = run_query_tag(run_id=RUN_ID, tenant="acme", environment="prod")
_SET = re.compile(r"alter session set query_tag = '((?:[^'\\]|\\.|'')*)'", re.S)


class Session:
    """The one Snowflake session parameter the macros touch, and every statement they send."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.statements: list[str] = []
        self.tag_reads = 0

    def run_query(self, sql: str) -> None:
        self.statements.append(sql)
        if match := _SET.fullmatch(sql):
            self.tag = snowflake_string_value(match.group(1))
        elif sql == "alter session unset query_tag":
            self.tag = ""
        else:
            pytest.fail(f"unexpected statement {sql!r}")

    def current_query_tag(self) -> str:
        self.tag_reads += 1
        return self.tag


def _return(value: Any) -> NoReturn:
    raise MacroReturn(value)


def macro_blocks(source: str) -> list[BlockTag]:
    blocks = extract_toplevel_blocks(source, allowed_blocks={"macro"}, collect_raw_data=False)
    return [block for block in blocks if isinstance(block, BlockTag)]


def load_macros(source: str, session: Session, unique_id: str | None) -> Mapping[str, Callable[..., Any]]:
    """The file's macros as dbt would call them for the node ``unique_id`` (None: outside any node)."""
    context: dict[str, Any] = {
        "return": _return,
        "tojson": BaseContext.tojson,
        "fromjson": BaseContext.fromjson,
        "run_query": session.run_query,
        "get_current_query_tag": session.current_query_tag,
    }
    if unique_id is not None:
        context["model"] = SimpleNamespace(unique_id=unique_id)
    for block in macro_blocks(source):
        macro = SimpleNamespace(name=block.block_name, macro_sql=block.full_block)
        context[block.block_name] = CallableMacroGenerator(macro, context)
    return context


def materialise(source: str, session: Session, unique_id: str) -> str:
    """What dbt-snowflake's materialisations do: set the tag, run the node's SQL, restore the tag."""
    macros = load_macros(source, session, unique_id)
    original = macros["set_query_tag"]()
    tag_during_node = session.tag
    macros["unset_query_tag"](original)
    return tag_during_node


def test_the_file_defines_the_two_overridden_macros_and_only_lockgate_helpers_besides() -> None:
    source = query_tag_macro(run_id=RUN_ID, tenant="acme", environment="prod", nodes=NODES)
    names = [block.block_name for block in macro_blocks(source)]
    assert set(OVERRIDDEN_MACROS) <= set(names)
    assert all(name.startswith("lockgate__") for name in set(names) - set(OVERRIDDEN_MACROS))


def test_a_node_runs_under_its_own_json_tag_and_the_profile_tag_comes_back_after_it() -> None:
    source = query_tag_macro(run_id=RUN_ID, tenant="acme", environment="prod", nodes=NODES, session_tag=PROFILE_TAG)
    session = Session(PROFILE_TAG)

    tag = materialise(source, session, "model.shop.orders")

    assert json.loads(tag) == {
        "run_id": str(RUN_ID),
        "node_uuid": str(ORDERS_UUID),
        "unique_id": "model.shop.orders",
        "tenant": "acme",
        "env": "prod",
    }
    assert tag == node_query_tag(
        run_id=RUN_ID, tenant="acme", environment="prod", unique_id="model.shop.orders", node_uuid=ORDERS_UUID
    )
    assert session.tag == PROFILE_TAG
    assert session.tag_reads == 0, "with the profile's tag given, no `show parameters` per node"
    assert len(session.statements) == 2


def test_a_node_the_runner_did_not_name_is_tagged_with_a_null_node_uuid() -> None:
    source = query_tag_macro(run_id=RUN_ID, tenant="acme", environment="prod", nodes=NODES, session_tag="")
    session = Session("")

    tag = materialise(source, session, "test.shop.not_null_orders_id.84ef11d8fe")

    assert json.loads(tag)["node_uuid"] is None
    assert json.loads(tag)["unique_id"] == "test.shop.not_null_orders_id.84ef11d8fe"
    assert session.statements[-1] == "alter session unset query_tag", "an empty profile tag is unset, not set to ''"


def test_without_the_profile_tag_each_node_restores_what_the_session_had() -> None:
    source = query_tag_macro(run_id=RUN_ID, tenant="acme", environment="prod", nodes=NODES)
    session = Session("team's tag \\ 1")

    materialise(source, session, "model.shop.orders")

    assert session.tag == "team's tag \\ 1"
    assert session.tag_reads == 1


def test_a_node_tag_left_behind_by_a_failed_node_of_the_run_is_not_restored() -> None:
    source = query_tag_macro(run_id=RUN_ID, tenant="acme", environment="prod", nodes=NODES)
    left_behind = node_query_tag(
        run_id=RUN_ID, tenant="acme", environment="prod", unique_id="seed.shop.raw_orders", node_uuid=None
    )
    session = Session(left_behind)

    materialise(source, session, "model.shop.orders")

    assert session.tag == ""
    assert session.statements[-1] == "alter session unset query_tag"


@pytest.mark.parametrize(
    "current",
    [
        PROFILE_TAG,
        node_query_tag(run_id=uuid.uuid4(), tenant="acme", environment="prod", unique_id="model.a.b", node_uuid=None),
        "[1, 2]",
        "not json",
    ],
    ids=["this run's own profile tag", "another run's node tag", "json but not an object", "plain text"],
)
def test_other_session_tags_are_restored_as_they_were(current: str) -> None:
    source = query_tag_macro(run_id=RUN_ID, tenant="acme", environment="prod", nodes=NODES)
    session = Session(current)

    materialise(source, session, "model.shop.orders")

    assert session.tag == current


def test_outside_a_node_the_macros_leave_the_session_alone() -> None:
    source = query_tag_macro(run_id=RUN_ID, tenant="acme", environment="prod", nodes=NODES, session_tag=PROFILE_TAG)
    session = Session("operator's tag")
    macros = load_macros(source, session, unique_id=None)

    macros["unset_query_tag"](macros["set_query_tag"]())

    assert session.statements == []
    assert session.tag == "operator's tag"


_awkward = st.text(
    alphabet=st.one_of(st.sampled_from("'\"\\{}%#$-/*\n\r\t\0é€😀"), st.characters(codec="utf-8")),
    max_size=60,
)


@given(tenant=_awkward, environment=_awkward, unique_id=_awkward, session_tag=_awkward)
def test_any_text_survives_jinja_json_and_sql_quoting(
    tenant: str, environment: str, unique_id: str, session_tag: str
) -> None:
    node_uuid = uuid.uuid4()
    source = query_tag_macro(
        run_id=RUN_ID,
        tenant=tenant,
        environment=environment,
        nodes={unique_id: node_uuid},
        session_tag=session_tag,
    )
    session = Session(session_tag)

    tag = materialise(source, session, unique_id)

    assert json.loads(tag) == {
        "run_id": str(RUN_ID),
        "node_uuid": str(node_uuid),
        "unique_id": unique_id,
        "tenant": tenant,
        "env": environment,
    }
    assert tag.isascii()
    assert session.tag == session_tag


def test_a_tag_over_snowflakes_limit_is_refused_before_any_dbt_runs() -> None:
    fixed = len(
        node_query_tag(
            run_id=RUN_ID, tenant="", environment="prod", unique_id="model.shop.orders", node_uuid=ORDERS_UUID
        )
    )
    longest = "t" * (MAX_TAG_CHARS - fixed)
    query_tag_macro(run_id=RUN_ID, tenant=longest, environment="prod", nodes={"model.shop.orders": ORDERS_UUID})

    with pytest.raises(QueryTagTooLongError, match=r"model\.shop\.orders"):
        query_tag_macro(
            run_id=RUN_ID, tenant=longest + "t", environment="prod", nodes={"model.shop.orders": ORDERS_UUID}
        )
