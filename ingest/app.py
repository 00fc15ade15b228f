"""The ingest service: FastAPI app with an ASGI fast path for WCS hooks.

``/wcs/...`` HTTP requests bypass FastAPI routing (``IngestApp.__call__``);
the documented route ``POST /wcs/{method}`` runs the same ``HookEndpoint``
code, so /docs and /openapi.json describe what the fast path does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Request, Response
from starlette.types import Receive, Scope, Send

from events.bus import Bus
from events.envelope import IdSource
from ingest import docs
from ingest.config import IngestConfig
from ingest.docs_routes import add_docs
from ingest.drops import DropLog
from ingest.endpoint import HookEndpoint, extra_headers, hook_method
from ingest.hooks import HookHandler
from ingest.metrics import CONTENT_TYPE, HookMetrics
from ingest.read_auth import ReadAuth
from ingest.read_guard import UNAUTHORIZED_RESPONSE
from ingest.read_guard import dependencies as read_auth_dependencies

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text format 0.0.4",
        "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
    },
    **UNAUTHORIZED_RESPONSE,
}


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class IngestApp(FastAPI):
    """FastAPI whose ``/wcs/...`` HTTP requests go straight to ``hooks.serve``."""

    def __init__(self, hooks: HookEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hooks = hooks
        self.read_dependencies: Sequence[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = hook_method(scope)
            if method is not None:
                await self.hooks.serve(method, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    config: IngestConfig,
    bus: Bus,
    *,
    now_ms: Callable[[], int] = wall_clock_ms,
    ids: Callable[[], str] | None = None,
    extra_metrics: Callable[[], str] | None = None,
    health: Callable[[], dict[str, Any]] | None = None,
    read_auth: ReadAuth | None = None,
    drops: DropLog | None = None,
) -> IngestApp:
    """The ingest app; the caller runs it (uvicorn) and owns the bus consumer.

    ``now_ms`` stamps ``received_at``; ``ids`` gives envelope ids (default: a
    fresh ``IdSource`` per app, so forked workers never share a prefix);
    ``extra_metrics`` returns Prometheus text appended to /metrics; ``health``
    returns fields merged into (and able to override) /health's ``{"status": "ok"}``.
    ``read_auth`` guards /metrics and the docs (default: open); mount read routers with
    ``app.read_dependencies`` so they are guarded the same way. /health stays open.
    ``drops`` counts envelopes not kept (the bus's overflow shares it); /metrics shows it and
    /health says ``degraded`` while losses are recent.
    """
    metrics = HookMetrics()
    drops = drops if drops is not None else DropLog()
    handler = HookHandler(config, bus, metrics, now_ms, ids or IdSource(), drops)
    hooks = HookEndpoint(handler, metrics)
    app = IngestApp(
        hooks,
        title="wcs-analytics ingest",
        description=docs.HOOK_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.read_dependencies = read_auth_dependencies(read_auth or ReadAuth())
    add_docs(app, app.read_dependencies)

    @app.post(
        "/wcs/{method}",
        summary="WCS REST hook",
        description=docs.HOOK_DESCRIPTION,
        responses=docs.HOOK_RESPONSES,
        openapi_extra=docs.HOOK_OPENAPI,
        response_class=Response,
    )
    async def wcs_hook(
        method: Annotated[str, Path(description=docs.method_description())], request: Request
    ) -> Response:
        started = time.perf_counter()
        status, body = await hooks.respond(method, "POST", request.headers.raw, request.receive)
        hooks.observe(started)
        extra = {name.decode(): value.decode() for name, value in extra_headers(status)}
        return Response(body, status, headers=extra, media_type="application/json")

    @app.get("/health")
    async def get_health() -> Response:
        fields = {"status": "ok", **drops.health(), **(health() if health is not None else {})}
        return Response(orjson.dumps(fields), media_type="application/json")

    @app.get(
        "/metrics",
        dependencies=list(app.read_dependencies),
        response_class=Response,
        responses=METRICS_RESPONSES,
    )
    async def get_metrics() -> Response:
        text = metrics.render(bus.depth()) + drops.metrics()
        if extra_metrics is not None:
            extra = extra_metrics()
            text += extra if not extra or extra.endswith("\n") else extra + "\n"
        return Response(text, media_type=CONTENT_TYPE)

    return app
