"""The uvicorn configuration shared by ``run`` and ``ingest``: httptools behind the guard."""

from __future__ import annotations

import uvicorn

from ingest.app import IngestApp
from ingest.http_guard import HttpGuard
from wcs_analytics.settings import Settings


def server_config(app: IngestApp, settings: Settings, guard: HttpGuard) -> uvicorn.Config:
    """uvicorn for the hook path: httptools with the connection guard (header and body
    deadlines, the connection cap) answering plain hook requests itself (the app's hook
    endpoint: ingest/uvicorn_compat.py), no access log (bodies and URLs stay out of logs)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guard.protocol_class(app.hooks),
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )
