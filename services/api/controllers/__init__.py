"""Every HTTP controller of every context, in one list for the app factory."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

CONTROLLERS: list[ControllerRouterHandler] = []
