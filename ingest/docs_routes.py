"""``/docs``, ``/redoc`` and ``/openapi.json`` served without a CDN, behind the read guard.

Swagger UI and ReDoc assets come from the ``fastapi-offline`` package (a runtime
dependency), served by this app under ``/docs/static/``; the pages are FastAPI's own HTML
pointed at them. Every route takes the read side's ``dependencies`` (``ingest.read_auth``).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any, Final

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, Response

ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}


def _assets() -> dict[str, bytes]:
    folder = resources.files("fastapi_offline").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in ASSETS}


def add_docs(app: FastAPI, dependencies: Sequence[Any]) -> None:
    """Add the docs routes to an app created with ``docs_url=redoc_url=openapi_url=None``."""
    assets = _assets()
    deps = list(dependencies)

    def prefix(request: Request) -> str:
        root: str = request.scope.get("root_path", "")
        return root

    @app.get("/openapi.json", include_in_schema=False, dependencies=deps)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=deps)
    async def swagger(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}/docs/static/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/static/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/static/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False, dependencies=deps)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False, dependencies=deps)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/docs/static/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs/static/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/docs/static/{name}", include_in_schema=False, dependencies=deps)
    async def asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "no such asset")
        return Response(assets[name], media_type=ASSETS[name])
