"""DDL and insert layout generated from ``events.tables`` (the columns are defined once, there).

Pure string building, no IO. The database name is put into SQL verbatim:
callers check it with ``check_identifier`` first (``migrate`` does) or pass the
``{db}`` template placeholder. Table names come from ``events.tables``.
"""

from __future__ import annotations

import re
from typing import Final

import orjson

from events.envelope import Envelope
from events.tables import Row, Table
from sinks.cluster import GLOBAL_PATH, GLOBAL_REPLICA, local_name, on_cluster, replicated_engine
from sinks.errors import ConfigError

IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
MIGRATIONS_TABLE: Final = "schema_migrations"


def check_identifier(name: str, what: str = "database name") -> str:
    """``name`` unchanged if it is a plain identifier; ConfigError otherwise."""
    if IDENTIFIER.fullmatch(name) is None:
        raise ConfigError(f"{what} {name!r} must match {IDENTIFIER.pattern}")
    return name


def create_database_sql(database: str, cluster: str | None = None) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster(cluster)}"


def create_table_sql(table: Table, database: str, cluster: str | None = None) -> str:
    """``CREATE TABLE IF NOT EXISTS db.name (...) ENGINE = ... [PARTITION BY] ORDER BY ...``.

    With ``cluster`` (see ``sinks.cluster``): the replicated ``db.name_local`` ON CLUSTER.
    """
    columns = ",\n".join(f"    `{name}` {kind}" for name, kind in table.columns)
    partition = f"\nPARTITION BY {table.partition_by}" if table.partition_by else ""
    order_by = ", ".join(table.order_by)
    engine = replicated_engine(table.engine) if cluster else table.engine
    ttl = f"\nTTL {table.ttl}" if table.ttl else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{local_name(table.name, cluster)}"
        f"{on_cluster(cluster)}"
        f" (\n{columns}\n)\nENGINE = {engine}{partition}\nORDER BY ({order_by}){ttl}"
    )


def create_migrations_table_sql(database: str, cluster: str | None = None) -> str:
    """The migrations record; on a cluster one replicated copy on every node (no shards)."""
    engine = "ReplacingMergeTree"
    if cluster:
        engine = replicated_engine(engine, GLOBAL_PATH, GLOBAL_REPLICA)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE}{on_cluster(cluster)}"
        " (version UInt32, name String, applied_at DateTime64(3, 'UTC'))"
        f" ENGINE = {engine} ORDER BY version"
    )


def version_column(table: Table) -> str | None:
    """The version column of ``ReplacingMergeTree(version, ...)``; None if rows never collapse
    by version (plain ``ReplacingMergeTree`` such as ``events`` keeps every distinct key)."""
    match = re.fullmatch(r"ReplacingMergeTree\((\w+)(?:,\s*\w+)?\)", table.engine)
    return match.group(1) if match else None


def column_types(table: Table) -> tuple[str, ...]:
    """Insert types in ``column_names`` order: given to the driver so it skips DESCRIBE."""
    return tuple(kind for _, kind in table.columns)


def envelope_row(envelope: Envelope) -> Row:
    """The ``events`` row of one envelope: body as a JSON string, '' for missing scope ids."""
    return (
        "events",
        {
            "id": envelope["id"],
            "received_at": envelope["received_at"],
            "method": envelope["method"],
            "family": envelope["family"],
            "key": envelope["key"],
            "node_id": envelope["node_id"] or "",
            "app_key": envelope["app_key"] or "",
            "session_id": envelope["session_id"] or "",
            "body": orjson.dumps(envelope["body"]).decode(),
        },
    )
