"""Read API of the process that owns the data: dashboard, exports, KPI JSON.

chDB allows one owner process per data directory, so everything that reads the
embedded database while ``run`` is up goes through these routes. The same
routers serve ``wcs-analytics dashboard --clickhouse DSN`` next to a server.

``mount`` is the one way to add them to an app: every router is included with the read
side's guard (``ingest.read_guard``), so a route added to any router listed here is
guarded without further work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from ingest.read_guard import UNAUTHORIZED_RESPONSE
from wcs_analytics.api import dashboard, exports, rated_exports
from wcs_analytics.api.access import ReadAccess


def build_routers(access: ReadAccess, rates_dir: Path | None = None) -> list[APIRouter]:
    """Every read router (add new ones here: ``mount`` guards them)."""
    routers = [module.create_router(access) for module in (exports, dashboard)]
    return [*routers, rated_exports.create_router(access, rates_dir)]  # docs/rating.md


def mount(
    app: FastAPI, access: ReadAccess, dependencies: Sequence[Any], rates_dir: Path | None = None
) -> None:
    """Include every read router in ``app`` behind ``dependencies`` (the read guard);
    ``rates_dir``: the decks of rated exports (``--rates-dir``, docs/rating.md)."""
    responses = UNAUTHORIZED_RESPONSE if dependencies else None
    for router in build_routers(access, rates_dir):
        app.include_router(router, dependencies=list(dependencies), responses=responses)


__all__ = ["ReadAccess", "build_routers", "mount"]
