"""Read API of the process that owns the data: dashboard, exports, KPI JSON.

chDB allows one owner process per data directory, so everything that reads the
embedded database while ``run`` is up goes through these routes. The same
routers serve ``wcs-analytics dashboard --clickhouse DSN`` next to a server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from wcs_analytics.api import dashboard, exports, rated_exports
from wcs_analytics.api.access import ReadAccess


def build_routers(access: ReadAccess, rates_dir: Path | None = None) -> list[APIRouter]:
    """Every read router, mounted by the service next to the hook routes."""
    routers = [module.create_router(access) for module in (exports, dashboard)]
    return [*routers, rated_exports.create_router(access, rates_dir)]  # docs/rating.md


__all__ = ["ReadAccess", "build_routers"]
