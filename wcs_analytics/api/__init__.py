"""Read API of the process that owns the data: dashboard, exports, KPI JSON.

chDB allows one owner process per data directory, so everything that reads the
embedded database while ``run`` is up goes through these routes. The same
routers serve ``wcs-analytics dashboard --clickhouse DSN`` next to a server.
"""

from __future__ import annotations

from fastapi import APIRouter

from wcs_analytics.api import dashboard, exports
from wcs_analytics.api.access import ReadAccess


def build_routers(access: ReadAccess) -> list[APIRouter]:
    """Every read router, mounted by the service next to the hook routes."""
    return [module.create_router(access) for module in (exports, dashboard)]


__all__ = ["ReadAccess", "build_routers"]
