"""The tenancy read model as the API and the CLI use it: queries plus read-your-writes.

Decision (read-your-writes): the process that handles a tenancy request keeps the tenancy projection
current itself. Before a read it catches the projection up to the store's head (one cheap query when
nothing is new); after a command it drives the catch-up until the read model shows the command's stream
version, with a short deadline (``WAIT_SECONDS``). Both go through ``ProjectionRunner.catch_up``, whose
per-batch advisory lock and checkpoint make it safe beside a projector worker, a replay or another API
process: whoever applies an event first wins and the others skip it. This works the same in the embedded
default and in the distributed mode; if the projection cannot catch up in time (a projector bug, a stuck
transaction elsewhere) the request fails with 503 and the command's events stay stored.
"""

from __future__ import annotations

import weakref

from projections.tenancy.projector import TenancyProjector
from services.shared.readmodel import CaughtUpReadModel, PooledStore

WAIT_SECONDS = 5.0


class TenancyReadModel(CaughtUpReadModel):
    def __init__(self, store: PooledStore) -> None:
        super().__init__(TenancyProjector(), store, wait_seconds=WAIT_SECONDS)


_models: weakref.WeakKeyDictionary[PooledStore, TenancyReadModel] = weakref.WeakKeyDictionary()


def read_model(store: PooledStore) -> TenancyReadModel:
    """One read model (and one runner, whose position and mutex are shared) per store instance."""
    model = _models.get(store)
    if model is None:
        model = _models[store] = TenancyReadModel(store)
    return model
