"""YAML selectors (``selectors.yml``) as dbt evaluates them, from the definitions the manifest carries.

The manifest's ``selectors`` (``graph.selectors``, verbatim) hold every selector as
``{name, description?, default?, definition}``, where dbt has already normalised the definition
(``dbt/config/selectors.py``, ``SelectorDict``): string criteria became ``{method, value, parents, ...}``
dicts and ``method: selector`` references were mostly inlined. This module follows dbt's own parser of those
definitions (``dbt/graph/cli.py``, ``parse_from_definition``) and accepts the raw YAML shapes too:

- a string is a criterion in the CLI grammar (``"+tag:nightly"``);
- ``{union: [...]}`` / ``{intersection: [...]}``: a list of definitions, of which (at most) one dict with an
  ``exclude`` key is subtracted from the combination (its other keys are ignored, as in dbt);
- ``{method, value, parents, parents_depth, children, children_depth, childrens_parents,
  indirect_selection, exclude?}`` or the one-key shorthand ``{tag: nightly}``;
- ``{method: selector, value: <name>}`` is the named selector's definition (other keys ignored).

Groups built from YAML use dbt's default (eager) mode when they re-examine indirectly selected tests; each
criterion uses its own ``indirect_selection`` or, failing that, the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.planning.selection.grammar import (
    Criterion,
    Group,
    IndirectSelection,
    SelectorSyntaxError,
    Spec,
    criterion_from_dict,
    parse_criterion,
)
from services.shared.errors import ContractViolationError, NotFoundError

__all__ = ["UnknownSelectorError", "default_selector", "parse_selector"]


class UnknownSelectorError(NotFoundError, ContractViolationError):
    """``--selector <name>`` names no selector of the project."""

    code = "unknown_selector"


def default_selector(selectors: Mapping[str, Any]) -> str | None:
    """The selector with ``default: true`` (dbt uses it when neither --select nor --exclude is given)."""
    for name, selector in selectors.items():
        if isinstance(selector, dict) and selector.get("default") is True:
            return name
    return None


def parse_selector(selectors: Mapping[str, Any], name: str, *, indirect_selection: IndirectSelection = "eager") -> Spec:
    """The spec of selector ``name`` (raises ``UnknownSelectorError`` if the project has none by that name)."""
    return _Parser(selectors, indirect_selection).selector(name, ())


class _Parser:
    def __init__(self, selectors: Mapping[str, Any], indirect_selection: IndirectSelection) -> None:
        self._selectors = selectors
        self._mode = indirect_selection

    def selector(self, name: str, resolving: tuple[str, ...]) -> Spec:
        if name in resolving:
            raise SelectorSyntaxError(
                f"selector:{name}", f"selectors reference each other: {' -> '.join((*resolving, name))}"
            )
        entry = self._selectors.get(name)
        if not isinstance(entry, dict) or "definition" not in entry:
            known = ", ".join(sorted(self._selectors)) or "none"
            raise UnknownSelectorError(f"no selector named {name!r} in the project (selectors: {known})", name=name)
        definition = entry["definition"]
        if (
            isinstance(definition, dict)
            and ("union" in definition or "intersection" in definition)
            and len(definition) > 1
        ):
            raise SelectorSyntaxError(
                f"selector:{name}",
                f"only a single 'union' or 'intersection' key is allowed at the root, found {', '.join(definition)}",
            )
        return self.definition(definition, (*resolving, name))

    def definition(self, definition: Any, resolving: tuple[str, ...]) -> Spec:
        if isinstance(definition, str):
            return parse_criterion(definition, indirect_selection=self._mode)
        if not isinstance(definition, dict):
            raise SelectorSyntaxError(
                repr(definition),
                f"expected a union, an intersection, a string or a dict, not {type(definition).__name__}",
            )
        if "union" in definition:
            return self._combination("union", definition, resolving)
        if "intersection" in definition:
            return self._combination("intersection", definition, resolving)
        return self._dict(definition, resolving)

    def _list(self, definition: dict[str, Any], key: str) -> list[Any]:
        values = definition[key]
        if not isinstance(values, list):
            raise SelectorSyntaxError(repr(definition), f"the value of {key!r} must be a list")
        for value in values:
            if not isinstance(value, (str, dict)):
                raise SelectorSyntaxError(repr(definition), f"{key!r} holds {value!r}: expected a dict or a string")
        return values

    def _exclusions(self, definition: dict[str, Any], resolving: tuple[str, ...]) -> Spec | None:
        parts = [self.definition(item, resolving) for item in self._list(definition, "exclude")]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return Group(kind="union", components=tuple(parts))

    def _combination(self, kind: str, definition: dict[str, Any], resolving: tuple[str, ...]) -> Spec:
        includes: list[Spec] = []
        exclude: Spec | None = None
        seen_exclude = False
        for item in self._list(definition, kind):
            if isinstance(item, dict) and "exclude" in item:
                if seen_exclude:
                    raise SelectorSyntaxError(repr(definition), f"only one 'exclude' is allowed in a {kind}")
                seen_exclude = True
                exclude = self._exclusions(item, resolving)
            else:
                includes.append(self.definition(item, resolving))
        combined = Group(kind="union" if kind == "union" else "intersection", components=tuple(includes))
        if exclude is None:
            return combined
        return Group(kind="difference", components=(combined, exclude))

    def _dict(self, definition: dict[str, Any], resolving: tuple[str, ...]) -> Spec:
        exclude: Spec | None = None
        if len(definition) == 1:
            key, value = next(iter(definition.items()))
            if not isinstance(key, str):
                raise SelectorSyntaxError(repr(definition), f"a definition key must be a string, not {key!r}")
            fields: dict[str, Any] = {"method": key, "value": value}
        elif definition.get("method") == "selector":
            return self.selector(str(definition.get("value")), resolving)
        elif "method" in definition and "value" in definition:
            fields = {k: v for k, v in definition.items() if k != "exclude"}
            if "exclude" in definition:
                exclude = self._exclusions(definition, resolving)
        else:
            raise SelectorSyntaxError(
                repr(definition),
                f"expected one key, or 'method' and 'value', but got {', '.join(map(str, definition))}",
            )
        if fields["method"] == "selector":
            return self.selector(str(fields["value"]), resolving)
        base: Criterion = criterion_from_dict(fields, expression=_describe(fields), indirect_selection=self._mode)
        if exclude is None:
            return base
        return Group(kind="difference", components=(base, exclude))


def _describe(fields: dict[str, Any]) -> str:
    method = fields.get("method")
    return f"{method}:{fields.get('value')}" if method else str(fields.get("value"))
