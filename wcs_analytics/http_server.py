"""The uvicorn configuration shared by ``run`` and ``ingest``: httptools behind the guard."""

from __future__ import annotations

from typing import Any

import uvicorn

from ingest.http_guard import HttpGuard
from wcs_analytics.settings import Settings


def server_config(app: Any, settings: Settings, guard: HttpGuard) -> uvicorn.Config:
    """uvicorn for the hook path: httptools with the connection guard (header and body
    deadlines, the connection cap), no access log (bodies and URLs stay out of logs)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guard.protocol_class(),
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )
