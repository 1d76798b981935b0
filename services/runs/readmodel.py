"""The runs read model with read-your-writes (one per store instance)."""

from __future__ import annotations

import uuid
import weakref

from contracts.api.runs import NodeView, RunView
from projections.runs import queries
from projections.runs.projector import RunsProjector
from services.shared.errors import NotFoundError
from services.shared.readmodel import CaughtUpReadModel, PooledStore

WAIT_SECONDS = 5.0


class RunsReadModel(CaughtUpReadModel):
    def __init__(self, store: PooledStore) -> None:
        super().__init__(RunsProjector(), store, wait_seconds=WAIT_SECONDS)

    async def run(self, tenant: str, run_id: uuid.UUID, *, version: int = 0) -> RunView:
        """The run as the read model shows it, at ``version`` or later (a command's own write)."""
        if version == 0:
            await self.catch_up()
            view = await queries.get_run(self.db, tenant, run_id)
            if view is None:
                raise NotFoundError(f"run {run_id} not found", run_id=str(run_id))
            return view
        return await self.wait_for(lambda: queries.get_run(self.db, tenant, run_id), version, f"run {run_id}")

    async def nodes(self, tenant: str, run_id: uuid.UUID, *, attempt: int | None = None) -> list[NodeView]:
        """The run's node timeline (its current attempt unless ``attempt`` says otherwise), caught up."""
        await self.catch_up()
        return await queries.run_nodes(self.db, tenant, run_id, attempt=attempt)

    async def final_log_lines(self, tenant: str, run_id: uuid.UUID) -> int | None:
        """Caught up: the run's final log line count once it has ended, None while it may still write lines.
        What ``services.runner.logs.follow`` asks to know when to stop."""
        await self.catch_up()
        return await queries.final_log_lines(self.db, tenant, run_id)


_models: weakref.WeakKeyDictionary[PooledStore, RunsReadModel] = weakref.WeakKeyDictionary()


def runs_read_model(store: PooledStore) -> RunsReadModel:
    model = _models.get(store)
    if model is None:
        model = _models[store] = RunsReadModel(store)
    return model
