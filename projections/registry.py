"""The read models this process knows: what ``lockgate replay`` and ``lockgate worker projector`` run.

To add a read model, import its projector below and append one line to ``known_projectors``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from projections.canvas.projector import CanvasProjector
from projections.graph.projector import GraphProjector
from projections.runner import check_projector_name
from projections.runs.projector import RunsProjector
from projections.runtime import Projector
from projections.tenancy.projector import TenancyProjector
from services.shared.errors import ContractViolationError, NotFoundError


class UnknownProjectionError(NotFoundError):
    """A projection name that no registered projector answers to."""

    code = "unknown_projection"


class ProjectorRegistry:
    """Projectors by name, in registration order. Names are unique (a name is a checkpoint)."""

    def __init__(self, projectors: Sequence[Projector] = ()) -> None:
        self._by_name: dict[str, Projector] = {}
        for projector in projectors:
            self.register(projector)

    def register(self, projector: Projector) -> Projector:
        name = check_projector_name(projector.name)
        known = self._by_name.get(name)
        if known is not None and known is not projector:
            raise ContractViolationError(f"projector name {name!r} is already taken by {type(known).__qualname__}")
        self._by_name[name] = projector
        return projector

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Projector:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name) or "none"
            raise UnknownProjectionError(f"no projection named {name!r} (known: {known})", name=name) from None

    def select(self, names: Sequence[str] | None = None) -> list[Projector]:
        """All projectors (``names`` None), or the named ones in the given order; unknown names are refused."""
        if names is None:
            return list(self._by_name.values())
        return [self.get(name) for name in dict.fromkeys(names)]

    def __iter__(self) -> Iterator[Projector]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def known_projectors() -> ProjectorRegistry:
    """Every read model of Lockgate, freshly instantiated. Append new read models to this list."""
    return ProjectorRegistry(
        [
            TenancyProjector(),
            GraphProjector(),
            RunsProjector(),
            CanvasProjector(),
        ]
    )
