"""The canvas read model as the API uses it: read after catching up, and read-your-writes after a command."""

from __future__ import annotations

import weakref

from projections.canvas.projector import CanvasProjector
from services.shared.readmodel import CaughtUpReadModel, PooledStore

WAIT_SECONDS = 5.0


class CanvasReadModel(CaughtUpReadModel):
    def __init__(self, store: PooledStore) -> None:
        super().__init__(CanvasProjector(), store, wait_seconds=WAIT_SECONDS)


_models: weakref.WeakKeyDictionary[PooledStore, CanvasReadModel] = weakref.WeakKeyDictionary()


def canvas_read_model(store: PooledStore) -> CanvasReadModel:
    model = _models.get(store)
    if model is None:
        model = _models[store] = CanvasReadModel(store)
    return model
