"""The litestar app factory. Contexts contribute their controllers through ``ROUTE_HANDLERS``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ControllerRouterHandler

from services.api.deps import provide_command_context, provide_principal, provide_runtime
from services.api.errors import EXCEPTION_HANDLERS
from services.api.health import healthz, metrics, readyz
from services.api.middleware import request_context
from services.api.webui import web_ui
from services.runtime import Runtime
from services.shared.auth import TokenTable
from services.shared.settings import Settings
from services.shared.telemetry import configure_tracing

MAX_REQUEST_BODY = 1024 * 1024
"""Commands are small; artifact uploads get their own limit on their own routes."""


def route_handlers() -> list[ControllerRouterHandler]:
    from services.api.controllers import CONTROLLERS  # noqa: PLC0415 - controllers import the contexts

    return [healthz, readyz, metrics, *CONTROLLERS, web_ui]


RuntimeFactory = Callable[[Settings], Awaitable[Runtime]]


def create_app(
    settings: Settings,
    *,
    tokens: TokenTable | None = None,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
    open_runtime: RuntimeFactory = Runtime.open_with_workers,
) -> Litestar:
    """Build the API. The runtime (store pool, in-process workers) is opened on startup, in the server's
    event loop, and closed on shutdown; it is reachable as ``app.state.runtime`` while the app runs."""
    configure_tracing()  # a no-op when a provider (with exporters) is installed already

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = await open_runtime(settings)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    app = Litestar(
        route_handlers=[*route_handlers(), *extra_handlers],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "command_context": Provide(provide_command_context, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_context],
        lifespan=[lifespan],
        request_max_body_size=MAX_REQUEST_BODY,
        openapi_config=OpenAPIConfig(
            title="Lockgate",
            version="0.1.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=False,
        logging_config=None,  # logging is configured once, by services.shared.telemetry
    )
    app.state.tokens = tokens or TokenTable({})
    return app
