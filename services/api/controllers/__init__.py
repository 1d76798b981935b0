"""Every HTTP controller of every context, in one list for the app factory."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from services.api.controllers.canvas import CanvasController
from services.api.controllers.dashboard import dashboard
from services.api.controllers.events import EventController
from services.api.controllers.graph import GraphController
from services.api.controllers.layouts import LayoutController
from services.api.controllers.runs import RunsController
from services.api.controllers.session import me
from services.api.controllers.tenancy import TENANCY_CONTROLLERS

CONTROLLERS: list[ControllerRouterHandler] = [
    *TENANCY_CONTROLLERS,
    EventController,
    GraphController,
    RunsController,
    CanvasController,
    LayoutController,
    me,
    dashboard,
]
