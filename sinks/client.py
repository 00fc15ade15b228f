"""The one place that opens a database connection: a clickhouse-connect client from a DSN.

``chdb:///abs/path`` opens the embedded chDB engine in this process (the
directory is created; chDB allows one data path per process, clients on the
same path share the engine). ``http(s)://user:pass@host:8123`` talks to a
ClickHouse server. Close every client with ``client.close()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect

from sinks.clickhouse_compat import skip_pandas_probe
from sinks.errors import ConfigError, translated
from sinks.schema import check_identifier

Client = Any  # clickhouse_connect.driver.Client (untyped library)


@dataclass(frozen=True, slots=True)
class Target:
    """A checked DSN: where it points, printable without credentials."""

    scheme: str
    display: str
    path: str | None = None  # chDB data directory


def parse_dsn(dsn: str) -> Target:
    """Validate ``dsn`` without IO; ConfigError names what is wrong (never echoes a password)."""
    try:
        parts = urlsplit(dsn)
        port = parts.port if parts.scheme in ("http", "https") else None
    except ValueError as exc:
        raise ConfigError(f"ClickHouse DSN is malformed: {exc}") from None
    if parts.scheme == "chdb":
        if parts.netloc or not parts.path.startswith("/"):
            raise ConfigError("chDB DSN must name an absolute directory: chdb:///abs/path")
        return Target("chdb", f"chdb://{parts.path}", parts.path)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"ClickHouse DSN scheme {parts.scheme!r} is not supported: "
            "use chdb:///abs/path or http(s)://user:pass@host:8123"
        )
    if not parts.hostname:
        raise ConfigError("ClickHouse DSN has no host: http(s)://user:pass@host:8123")
    if parts.path not in ("", "/"):
        raise ConfigError("ClickHouse DSN must not name a database: the database is set separately")
    display = f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")
    return Target(parts.scheme, display)


def connect(dsn: str, database: str = "wcs") -> Client:
    """Open a client for ``dsn``; its default database is ``database`` once that exists.

    Raises ConfigError for a bad DSN or database name, a chDB path other than
    the one this process already opened, or rejected credentials; TransientError
    when the server cannot be reached. sinks qualifies every table with the
    database, so the default only serves ad-hoc queries.
    """
    target = parse_dsn(dsn)
    check_identifier(database)
    skip_pandas_probe()
    if target.path is not None:
        try:
            os.makedirs(target.path, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create chDB directory {target.path}: {exc}") from None
    with translated(f"cannot connect to {target.display}"):
        client = clickhouse_connect.get_client(dsn=dsn)
        try:
            if database_exists(client, database):
                client.database = database
        except BaseException:
            client.close()
            raise
    return client


def database_exists(client: Client, database: str) -> bool:
    found = client.command(
        "SELECT count() FROM system.databases WHERE name = {db:String}",
        parameters={"db": database},
    )
    return int(found) > 0
