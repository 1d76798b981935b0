"""dbt's node selection grammar: ``--select``/``--exclude`` strings become a tree of set operations.

The rules are dbt-core's (``dbt/graph/cli.py`` and ``dbt/graph/selector_spec.py``, 1.11):

- an argument is split on single spaces into a **union**; each part is split on commas into an
  **intersection** of criteria (``a b,c`` = ``a or (b and c)``); an empty part (two spaces) is a criterion that
  matches nothing, as in dbt;
- a criterion is ``[@][N+][method[.arg...]:]value[+N]``: ``@`` selects the children, and all the parents of
  the node and its children; ``N+`` the parents up to N generations (no N: all); ``+N`` the children;
- without ``method:`` the value is a ``path`` when it contains ``/``, a ``file`` when it ends in ``.sql``,
  ``.py`` or ``.csv`` (any case), otherwise an ``fqn`` (node name, dotted path, wildcards);
- ``--select`` and ``--exclude`` make a **difference** (select minus exclude); no ``--select`` at all means
  dbt's default ``fqn:* source:* exposure:* metric:* semantic_model:*``.

Errors dbt reports while parsing (an unknown method, ``@`` with a ``+`` suffix, a line break inside a
criterion) raise ``SelectorSyntaxError``, whose message quotes the expression with a caret under the culprit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, Literal

import msgspec

from services.shared.errors import ContractViolationError

__all__ = [
    "DEFAULT_INCLUDES",
    "INDIRECT_SELECTION_MODES",
    "METHODS",
    "Criterion",
    "Group",
    "SelectorSyntaxError",
    "Spec",
    "check_indirect_selection",
    "criterion_from_dict",
    "parse_criterion",
    "parse_difference",
    "parse_union",
]

METHODS: Final = frozenset(
    {
        "fqn",
        "tag",
        "group",
        "access",
        "source",
        "path",
        "file",
        "package",
        "config",
        "test_name",
        "test_type",
        "resource_type",
        "state",
        "exposure",
        "metric",
        "result",
        "source_status",
        "version",
        "semantic_model",
        "saved_query",
        "unit_test",
    }
)
"""dbt's ``MethodName`` values: the methods a criterion may name."""

INDIRECT_SELECTION_MODES: Final = ("eager", "cautious", "buildable", "empty")

DEFAULT_INCLUDES: Final = ("fqn:*", "source:*", "exposure:*", "metric:*", "semantic_model:*")
"""What dbt selects when no ``--select`` is given (``dbt/graph/cli.py``)."""

IndirectSelection = Literal["eager", "cautious", "buildable", "empty"]

# [@][depth+][method[.args]:]value[+depth]; the value is the shortest text that leaves a valid suffix.
_CRITERION: Final = re.compile(
    r"""\A
    (?P<at>@)?
    (?P<up>(?P<up_depth>\d*)\+)?
    (?:(?P<method>[\w.]+):)?
    (?P<value>.*?)
    (?P<down>\+(?P<down_depth>\d*))?
    \Z""",
    re.VERBOSE,
)


class SelectorSyntaxError(ContractViolationError):
    """A selection expression dbt would refuse. ``position`` is the 0-based index of the offending character
    in ``expression`` (None when the expression is a YAML definition rather than a string)."""

    code = "selector_syntax_error"

    def __init__(self, expression: str, reason: str, position: int | None = None) -> None:
        if position is None:
            message = f"invalid selector {expression!r}: {reason}"
        else:
            caret = " " * position + "^"
            message = f"invalid selector {expression!r} at position {position}: {reason}\n  {expression}\n  {caret}"
        super().__init__(message, expression=expression, reason=reason, position=position)
        self.expression = expression
        self.reason = reason
        self.position = position


class Criterion(msgspec.Struct, frozen=True, kw_only=True):
    """One ``method:value`` with its graph operators (dbt's ``SelectionCriteria``)."""

    raw: str
    method: str
    arguments: tuple[str, ...] = ()
    value: Any
    childrens_parents: bool = False
    parents: bool = False
    parents_depth: int | None = None
    children: bool = False
    children_depth: int | None = None
    indirect_selection: IndirectSelection = "eager"
    expression: str = ""
    """The whole expression the criterion came from, and where it starts in it (for error messages)."""
    offset: int = 0
    value_offset: int = 0
    """Where the value starts inside ``raw``."""


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """A set operation over its components: ``union``, ``intersection`` or ``difference`` (the first
    component minus the others). ``indirect_selection`` is the mode dbt uses when it re-examines the tests
    its components selected only indirectly (only ``cautious`` and ``buildable`` do anything there)."""

    kind: Literal["union", "intersection", "difference"]
    components: tuple[Spec, ...]
    indirect_selection: IndirectSelection = "eager"


Spec = Criterion | Group


def check_indirect_selection(value: object, *, expression: str = "") -> IndirectSelection:
    if value == "eager":
        return "eager"
    if value == "cautious":
        return "cautious"
    if value == "buildable":
        return "buildable"
    if value == "empty":
        return "empty"
    raise SelectorSyntaxError(
        expression or str(value), f"indirect_selection must be one of {', '.join(INDIRECT_SELECTION_MODES)}"
    )


def _default_method(value: str) -> str:
    if "/" in value:
        return "path"
    if value.lower().endswith((".sql", ".py", ".csv")):
        return "file"
    return "fqn"


def _split_method(method: str, *, expression: str, position: int | None) -> tuple[str, tuple[str, ...]]:
    name, *arguments = method.split(".")
    if name not in METHODS:
        raise SelectorSyntaxError(
            expression,
            f"unknown selection method {name!r}; expected one of {', '.join(sorted(METHODS))}",
            position,
        )
    return name, tuple(arguments)


def parse_criterion(
    raw: str, *, expression: str | None = None, offset: int = 0, indirect_selection: IndirectSelection = "eager"
) -> Criterion:
    """One criterion (no spaces or commas are special here). ``expression``/``offset`` place ``raw`` in the
    text the user wrote, for error positions."""
    expression = raw if expression is None else expression
    match = _CRITERION.match(raw)
    if match is None:
        bad = next((i for i, ch in enumerate(raw) if ch in "\n\r"), 0)
        raise SelectorSyntaxError(expression, "a criterion cannot contain a line break", offset + bad)
    value = match["value"]
    arguments: tuple[str, ...] = ()
    if match["method"] is None:
        method = _default_method(value)
    else:
        method, arguments = _split_method(
            match["method"], expression=expression, position=offset + match.start("method")
        )
    if match["at"] and match["down"]:
        raise SelectorSyntaxError(
            expression, 'the "@" prefix and a "+" suffix are incompatible', offset + match.start("down")
        )
    return Criterion(
        raw=raw,
        method=method,
        arguments=arguments,
        value=value,
        childrens_parents=bool(match["at"]),
        parents=bool(match["up"]),
        parents_depth=int(match["up_depth"]) if match["up_depth"] else None,
        children=bool(match["down"]),
        children_depth=int(match["down_depth"]) if match["down_depth"] else None,
        indirect_selection=indirect_selection,
        expression=expression,
        offset=offset,
        value_offset=match.start("value"),
    )


def parse_union(components: Sequence[str], *, indirect_selection: IndirectSelection = "eager") -> Group:
    """``--select``/``--exclude`` values (click's ``multiple``: one string per flag) as dbt's union of
    intersections."""
    parts: list[Spec] = []
    for expression in components:
        start = 0
        for word in expression.split(" "):
            criteria: list[Spec] = []
            offset = start
            for raw in word.split(","):
                criteria.append(
                    parse_criterion(raw, expression=expression, offset=offset, indirect_selection=indirect_selection)
                )
                offset += len(raw) + 1
            parts.append(Group(kind="intersection", components=tuple(criteria), indirect_selection=indirect_selection))
            start += len(word) + 1
    return Group(kind="union", components=tuple(parts), indirect_selection=indirect_selection)


def parse_difference(
    select: str | Sequence[str] | None,
    exclude: str | Sequence[str] | None,
    *,
    indirect_selection: IndirectSelection = "eager",
) -> Group:
    """``--select`` minus ``--exclude``; ``select=None`` (or no strings) is dbt's default selection."""
    selects = _as_list(select)
    includes = parse_union(selects if selects else DEFAULT_INCLUDES, indirect_selection=indirect_selection)
    excludes = parse_union(_as_list(exclude), indirect_selection=indirect_selection)
    # dbt builds the outer difference with the default (eager) mode: it never re-examines indirect tests
    return Group(kind="difference", components=(includes, excludes))


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _depth(value: object, key: str, *, expression: str) -> int | None:
    """A depth as dbt's ``_match_to_int`` reads it: absent, empty or zero means no limit."""
    if not value:
        return None
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise SelectorSyntaxError(expression, f"{key} must be an integer, not {value!r}") from None


def criterion_from_dict(
    definition: dict[str, Any], *, expression: str, indirect_selection: IndirectSelection
) -> Criterion:
    """A YAML selector's ``{method, value, parents, parents_depth, ...}`` (dbt's
    ``selection_criteria_from_dict``); ``indirect_selection`` is the default when the dict has none."""
    if "value" not in definition:
        raise SelectorSyntaxError(expression, "a selector criterion needs a 'value'")
    raw_method = definition.get("method")
    value = definition["value"]
    arguments: tuple[str, ...] = ()
    if raw_method is None:
        method = _default_method(str(value))
    else:
        method, arguments = _split_method(str(raw_method), expression=expression, position=None)
    children = bool(definition.get("children"))
    childrens_parents = bool(definition.get("childrens_parents"))
    if children and childrens_parents:
        raise SelectorSyntaxError(expression, '"childrens_parents" (@) and "children" (+) are incompatible')
    mode = definition.get("indirect_selection", indirect_selection)
    return Criterion(
        raw=expression,
        method=method,
        arguments=arguments,
        value=value,
        childrens_parents=childrens_parents,
        parents=bool(definition.get("parents")),
        parents_depth=_depth(definition.get("parents_depth"), "parents_depth", expression=expression),
        children=children,
        children_depth=_depth(definition.get("children_depth"), "children_depth", expression=expression),
        indirect_selection=check_indirect_selection(mode, expression=expression),
        expression=expression,
    )
