"""``GET /dashboard`` (page + offline assets) and the ``/api/kpi/...`` JSON behind it.

Every KPI endpoint takes ``from``/``to`` (epoch ms or ISO 8601; default: the last hour),
``app_key`` and ``node`` (exact match; empty = all) and an optional ``step`` (bucket
seconds, a multiple of 60; default: about 240 buckets over the range). Answers
``{"from_ms", "to_ms", "step_ms", "rows": [...]}``; 400 for a bad parameter, 503 when
ClickHouse fails. Queries run through ``ReadAccess.run`` (off the event loop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse, RedirectResponse, Response

from sinks.schema import check_identifier
from wcs_analytics.api import kpi_data, kpi_sql
from wcs_analytics.api.access import ReadAccess
from wcs_analytics.api.kpi_params import window_from

log = logging.getLogger(__name__)

SERIES: Final = {
    "calls": kpi_sql.CALLS,
    "quality": kpi_sql.QUALITY,
    "concurrency": kpi_sql.CONCURRENCY,
    "streams": kpi_sql.STREAMS,
    "messages": kpi_sql.MESSAGES,
    "failed": kpi_sql.FAILED,
    "reasons": kpi_sql.REASONS,
}
TIME_HELP: Final = (
    "start: epoch ms or ISO 8601 (no zone = UTC), 1970 to 2100; default: one hour before `to`"
)
_DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
KPI_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {
        "description": "A bad parameter: not a time, out of 1970..2100, empty or over 400 days",
        "content": {"application/json": {"schema": _DETAIL}},
    },
    503: {
        "description": "ClickHouse failed to answer",
        "content": {"application/json": {"schema": _ERROR}},
    },
}
_TYPES: Final = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


def static_files() -> dict[str, tuple[bytes, str]]:
    """Packaged assets (wcs_analytics/api/static): name -> (content, media type)."""
    folder = resources.files("wcs_analytics.api").joinpath("static")
    out: dict[str, tuple[bytes, str]] = {}
    for item in folder.iterdir():
        kind = _TYPES.get("." + item.name.rsplit(".", 1)[-1])
        if item.is_file() and kind is not None:
            out[item.name] = (item.read_bytes(), f"{kind}; charset=utf-8")
    return out


def window_params(
    start: Annotated[str | None, Query(alias="from", description=TIME_HELP)] = None,
    end: Annotated[
        str | None, Query(alias="to", description="end (exclusive); default: now")
    ] = None,
    step: Annotated[
        str | None,
        Query(description="bucket seconds, a multiple of 60 up to 86400; default: ~240 buckets"),
    ] = None,
    app_key: Annotated[str, Query(description="exact app_key; empty = every app")] = "",
    node: Annotated[str, Query(description="exact node id; empty = every node")] = "",
) -> kpi_sql.Window:
    """The query parameters every KPI endpoint shares (declared here, so OpenAPI has them)."""
    given = {"from": start, "to": end, "step": step, "app_key": app_key, "node": node}
    try:
        return window_from({k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


WindowParam = Annotated[kpi_sql.Window, Depends(window_params)]


def create_router(access: ReadAccess) -> APIRouter:
    router = APIRouter(responses=KPI_ERRORS)
    database = check_identifier(access.database)
    assets = static_files()

    def asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "no such asset")
        body, kind = assets[name]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    async def answer(window: kpi_sql.Window, work: Callable[[Any, kpi_sql.Window], Any]) -> Any:
        try:
            result = await access.run(lambda client: work(client, window))
        except Exception as exc:  # the page shows the reason; the service keeps serving hooks
            log.warning("dashboard query failed: %s", exc)
            return JSONResponse({"error": f"query failed: {exc}"}, status_code=503)
        envelope = {"from_ms": window.from_ms, "to_ms": window.to_ms}
        return {**envelope, "step_ms": window.step_s * 1000, **result}

    @router.get("/dashboard", include_in_schema=False)
    async def page() -> Response:
        return asset("dashboard.html")

    @router.get("/dashboard/", include_in_schema=False)
    async def slash() -> Response:
        return RedirectResponse("../dashboard")

    @router.get("/dashboard/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return asset(name)

    @router.get("/api/kpi/filters")
    async def filters(window: WindowParam) -> Any:
        return await answer(window, lambda c, w: kpi_data.rows(c, kpi_sql.FILTERS, database, w)[0])

    @router.get("/api/kpi/summary")
    async def summary(window: WindowParam) -> Any:
        def work(client: Any, window: kpi_sql.Window) -> dict[str, Any]:
            return {"summary": kpi_data.rows(client, kpi_sql.SUMMARY, database, window)[0]}

        return await answer(window, work)

    @router.get("/api/kpi/alerts")
    async def alerts(window: WindowParam) -> Any:
        return await answer(window, lambda c, w: {"rows": kpi_data.alerts(c, database, w)})

    @router.get("/api/kpi/keepalive")
    async def keepalive(window: WindowParam) -> Any:
        def work(client: Any, window: kpi_sql.Window) -> dict[str, Any]:
            return {
                "rows": kpi_data.rows(client, kpi_sql.KEEPALIVE, database, window),
                "streams": kpi_data.rows(client, kpi_sql.KEEPALIVE_STREAMS, database, window),
            }

        return await answer(window, work)

    for name, template in SERIES.items():
        router.add_api_route(f"/api/kpi/{name}", _series_route(answer, template, database))
    return router


def _series_route(answer: Any, template: str, database: str) -> Callable[..., Any]:
    async def route(window: WindowParam) -> Any:
        return await answer(window, lambda c, w: {"rows": kpi_data.rows(c, template, database, w)})

    return route
