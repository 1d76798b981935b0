"""Given/When/Then for pure deciders: fold the given events with the aggregate's ``evolve``, run the
decider on the resulting state, and compare the events it returns (or the error it raises)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import pytest

from contracts.base import Event
from services.shared.errors import LockgateError

S = TypeVar("S")

NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
EARLIER = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario(Generic[S]):
    evolve: Callable[[S | None, Event], S | None]
    history: tuple[Event, ...] = ()

    def given(self, *events: Event) -> Scenario[S]:
        return Scenario(self.evolve, (*self.history, *events))

    @property
    def state(self) -> S | None:
        state: S | None = None
        for event in self.history:
            state = self.evolve(state, event)
        return state

    def when(self, decide: Callable[[S | None], Sequence[Event]]) -> Then:
        return Then(lambda: list(decide(self.state)))


@dataclass(frozen=True)
class Then:
    run: Callable[[], list[Event]]

    def then(self, *expected: Event) -> None:
        assert self.run() == list(expected)

    def then_nothing(self) -> None:
        assert self.run() == []

    def then_refused(self, error: type[LockgateError], match: str) -> LockgateError:
        with pytest.raises(error, match=match) as info:
            self.run()
        return info.value
