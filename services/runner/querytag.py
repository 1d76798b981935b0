"""Snowflake QUERY_TAG per dbt node: a macro file the runner adds to the run's temporary workspace only.

Every query a node runs carries the JSON tag ``{"run_id", "node_uuid", "unique_id", "tenant", "env"}``, so
cost and query history can be attributed to a Lockgate run and node (the pattern of Select's dbt-query-tags).

How it takes effect (dbt-snowflake 1.12.3): the table, view, incremental, seed, snapshot, test, dynamic and
interactive table materialisations call ``set_query_tag()`` at their start and ``unset_query_tag(original)``
at their end. Those two are plain macros that dispatch to ``snowflake__set_query_tag``, which only acts
when a model configures ``query_tag``. dbt resolves an unqualified macro name in the node's own package
first, then the root project, then installed packages, then dbt's internal packages
(``dbt.context.macros.MacroNamespace``); dispatch search order is never consulted for the top-level name.
So macros named ``set_query_tag`` and ``unset_query_tag`` in the root project replace dbt-snowflake's for
every node of the project, with no change to ``dbt_project.yml`` and whatever ``dispatch`` config it has.

Limits of the override (say so when a run fails):
- A project that already defines ``set_query_tag`` or ``unset_query_tag`` itself (as dbt-query-tags asks
  its users to) makes dbt stop at parse time with "found two macros" (``OVERRIDDEN_MACROS`` names them, so
  the runner can check the manifest first). A package model whose own package defines them uses those.
- A model's own ``query_tag`` config is superseded by the Lockgate tag.
- Snowflake tags are session state: a materialisation that fails before its end leaves its tag on the
  connection until the next node sets its own. Passing ``session_tag`` (the profile's ``query_tag``) makes
  every node restore that value rather than whatever the session held.
"""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Mapping
from typing import ClassVar, Final

from services.shared.errors import LockgateError

MACRO_NAME: Final = "query_tag"
"""The workspace file's name: ``<project>/macros/lockgate/query_tag.sql``."""
OVERRIDDEN_MACROS: Final = ("set_query_tag", "unset_query_tag")
"""The project macros the file defines; a project that has its own cannot take the file."""
MAX_TAG_CHARS: Final = 2000
"""Snowflake's limit on a QUERY_TAG value."""

_JINJA_SAFE: Final = frozenset(string.ascii_letters + string.digits + " _.-:/@+=,")
"""Characters written as themselves inside a generated Jinja string literal; all others are escaped, so no
value can close the literal or the tag around it, or open a Jinja block."""


class QueryTagTooLongError(LockgateError):
    """A node's tag would exceed Snowflake's 2,000 characters (long tenant, environment or node names)."""

    code: ClassVar[str] = "query_tag_too_long"


def node_query_tag(
    *, run_id: uuid.UUID, tenant: str, environment: str, unique_id: str, node_uuid: uuid.UUID | None
) -> str:
    """The tag one node's queries carry, exactly as the macro renders it (dbt's ``tojson`` is ``json.dumps``
    with the same key order). ``node_uuid`` is None for a node the runner did not name (none in a faithful
    run)."""
    return json.dumps(
        {
            "run_id": str(run_id),
            "node_uuid": None if node_uuid is None else str(node_uuid),
            "unique_id": unique_id,
            "tenant": tenant,
            "env": environment,
        }
    )


def run_query_tag(*, run_id: uuid.UUID, tenant: str, environment: str) -> str:
    """A tag for the profile's ``query_tag``, so queries outside any node (connection set-up, schema
    creation, catalog look-ups, hooks on run start/end) are attributed to the run too."""
    return json.dumps({"run_id": str(run_id), "tenant": tenant, "env": environment})


def query_tag_macro(
    *,
    run_id: uuid.UUID,
    tenant: str,
    environment: str,
    nodes: Mapping[str, uuid.UUID],
    session_tag: str | None = None,
) -> str:
    """The source of the macro file that tags each node's queries with ``node_query_tag``.

    ``nodes``: unique_id -> node_uuid of the plan's nodes. ``session_tag``: the tag the profile sets at login
    (its ``query_tag``, "" when it has none); each node restores it at its end. When None, each node reads the
    session's tag first (one ``show parameters`` query per node, as dbt-snowflake does) and restores that,
    unless it is a node tag of this run left behind by a failed node, which it unsets.

    Raises ``QueryTagTooLongError`` when a named node's tag would exceed ``MAX_TAG_CHARS``.
    """
    for unique_id, node_uuid in nodes.items():
        tag = node_query_tag(
            run_id=run_id, tenant=tenant, environment=environment, unique_id=unique_id, node_uuid=node_uuid
        )
        if len(tag) > MAX_TAG_CHARS:
            raise QueryTagTooLongError(
                f"the query tag of node {unique_id!r} has {len(tag)} characters; Snowflake allows {MAX_TAG_CHARS}",
                unique_id=unique_id,
            )
    node_entries = "".join(
        f"\n      {_jinja_string(unique_id)}: {_jinja_string(str(node_uuid))},"
        for unique_id, node_uuid in nodes.items()
    )
    if session_tag is None:
        original = _ORIGINAL_FROM_SESSION.format(run_id=_jinja_string(str(run_id)))
    else:
        original = f"  {{{{- return({_jinja_string(session_tag)}) -}}}}\n"
    return _TEMPLATE.format(
        run_id=_jinja_string(str(run_id)),
        tenant=_jinja_string(tenant),
        env=_jinja_string(environment),
        nodes="{" + node_entries + "\n    }",
        original=original,
    )


def _jinja_string(value: str) -> str:
    """A Jinja string literal for ``value`` (Jinja decodes literals with Python's unicode-escape codec)."""
    return '"' + "".join(char if char in _JINJA_SAFE else _escaped(char) for char in value) + '"'


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


# The template is str.format'ed: literal Jinja braces are doubled. Nothing but _jinja_string literals and the
# run's UUID is ever interpolated, and no user value appears in a Jinja comment.
_TEMPLATE: Final = """\
{{#- Lockgate: added to this run's temporary workspace only, never to the repository. Every node's queries
    carry a JSON QUERY_TAG naming the run and the node (services/runner/querytag.py). -#}}

{{% macro set_query_tag() -%}}
  {{%- if model is not defined or model is none -%}}
    {{{{- return(none) -}}}}
  {{%- endif -%}}
  {{%- set original_query_tag = lockgate__original_query_tag() -%}}
  {{%- do run_query("alter session set query_tag = " ~ lockgate__sql_string(lockgate__node_query_tag())) -%}}
  {{{{- return(original_query_tag) -}}}}
{{%- endmacro %}}

{{% macro unset_query_tag(original_query_tag) -%}}
  {{%- if model is not defined or model is none -%}}
    {{{{- return(none) -}}}}
  {{%- endif -%}}
  {{%- if original_query_tag -%}}
    {{%- do run_query("alter session set query_tag = " ~ lockgate__sql_string(original_query_tag)) -%}}
  {{%- else -%}}
    {{%- do run_query("alter session unset query_tag") -%}}
  {{%- endif -%}}
{{%- endmacro %}}

{{% macro lockgate__node_query_tag() -%}}
  {{%- set node_uuids = {nodes} -%}}
  {{{{- return(tojson({{
      "run_id": {run_id},
      "node_uuid": node_uuids.get(model.unique_id),
      "unique_id": model.unique_id,
      "tenant": {tenant},
      "env": {env},
  }})) -}}}}
{{%- endmacro %}}

{{% macro lockgate__original_query_tag() -%}}
{original}{{%- endmacro %}}

{{% macro lockgate__sql_string(value) -%}}
  {{#- A Snowflake string literal: backslash starts an escape there, and a quote is doubled. -#}}
  {{{{- return("'" ~ value.replace("\\\\", "\\\\\\\\").replace("'", "''") ~ "'") -}}}}
{{%- endmacro %}}
"""

_ORIGINAL_FROM_SESSION: Final = """\
  {{%- set current = get_current_query_tag() -%}}
  {{%- set parsed = fromjson(current) if current else none -%}}
  {{%- if parsed is mapping and parsed.get("run_id") == {run_id} and parsed.get("unique_id") -%}}
    {{{{- return("") -}}}}
  {{%- endif -%}}
  {{{{- return(current) -}}}}
"""
