"""``wcs-analytics dashboard``: the read routes (dashboard, KPI JSON, exports) without ingest.

For a ClickHouse server (``--clickhouse http://...``), or a *stopped* embedded data
directory (``--data-dir D``, locked for as long as this serves: chDB has one owner).
While ``run`` owns the data, use its own ``/dashboard`` instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from sinks.errors import ConfigError
from wcs_analytics import settings as settings_mod
from wcs_analytics.settings import SettingsError

if TYPE_CHECKING:  # the web side is imported when it serves: ``wcs-analytics --help`` does not
    from fastapi import FastAPI

    from ingest.read_auth import ReadAuth
    from wcs_analytics.api import ReadAccess

READ_SETTINGS = ("read_token", "read_user", "read_password", "read_open")

log = logging.getLogger("wcs_analytics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--clickhouse", metavar="DSN", help="http(s)://user:pass@host:8123")
    source.add_argument("--data-dir", type=Path, help="a stopped embedded service's directory")
    parser.add_argument("--database", default="wcs", help="ClickHouse database (default: wcs)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8091, help="listen port (default: 8091)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    settings_mod.add_flags(parser, READ_SETTINGS)


def create_app(access: ReadAccess, read_auth: ReadAuth | None = None) -> FastAPI:
    """The read-only app: every read router, /metrics-free; ``/health`` open, the rest
    behind ``read_auth`` (default: open), ``/docs`` served offline."""
    from fastapi import FastAPI

    from ingest.docs_routes import add_docs
    from ingest.read_auth import ReadAuth
    from ingest.read_guard import dependencies as read_auth_dependencies
    from wcs_analytics.api import mount

    app = FastAPI(title="wcs-analytics dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    guard = read_auth_dependencies(read_auth or ReadAuth())
    add_docs(app, guard)
    mount(app, access, guard)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _dsn(args: argparse.Namespace) -> tuple[str, AbstractContextManager[object]]:
    if args.clickhouse:
        return str(args.clickhouse), contextlib.nullcontext()
    from wcs_analytics.datadir import DataDirLock

    data_dir: Path = args.data_dir.resolve()
    if not (data_dir / "chdb").is_dir():
        raise ConfigError(f"{data_dir} holds no embedded database (no chdb/ directory)")
    return f"chdb://{data_dir / 'chdb'}", DataDirLock(data_dir)


def main(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. 2: bad DSN or directory; 3: the directory is in use."""
    import uvicorn

    from ingest.connections import ConnectionLimits
    from ingest.http_guard import HttpGuard
    from sinks.client import parse_dsn
    from wcs_analytics.api import ReadAccess
    from wcs_analytics.datadir import DataDirBusy
    from wcs_analytics.read_side import read_side

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        read_auth = read_side(settings_mod.load(os.environ, args), host=args.host)
        dsn, owner = _dsn(args)
        parse_dsn(dsn)
        with owner:
            access = ReadAccess(dsn, args.database)
            try:
                log.info("dashboard on http://%s:%d/dashboard", args.host, args.port)
                app = create_app(access, read_auth)
                guard = HttpGuard.start(ConnectionLimits())  # header/body deadlines, the cap
                http = guard.protocol_class()
                uvicorn.run(app, host=args.host, port=args.port, access_log=False, http=http)
            finally:
                access.close()
    except (ConfigError, SettingsError) as exc:
        print(f"wcs-analytics dashboard: {exc}", file=sys.stderr)
        return 2
    except DataDirBusy as exc:
        print(f"wcs-analytics dashboard: {exc}", file=sys.stderr)
        return 3
    return 0
