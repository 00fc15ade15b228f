"""Numbered, idempotent schema migrations, recorded in ``{db}.schema_migrations``.

Statements are templates with a ``{db}`` placeholder (replaced, not
``str.format``-ed, so DDL may contain braces). Every statement is idempotent
(``IF NOT EXISTS``) so a run interrupted between a statement and its record is
simply repeated. A later change to ``events.tables`` needs a new migration
(``ALTER TABLE {db}.x ADD COLUMN IF NOT EXISTS ...``, built with
``sinks.cluster.alter_table_sql`` so it also covers the cluster layout): migration 1
is generated from the current definitions, so on a fresh database the ALTER is a no-op.

``cluster`` (``--clickhouse-cluster``) switches every statement to ``ON CLUSTER`` with
replicated local tables behind Distributed ones (``sinks.cluster``); None, the default,
is the single-server DDL. Pick one per database: the two layouts do not convert.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from events.tables import ALERTS, MESSAGE_RATES_PARTS, STATE, STATUS_COUNTS_PARTS, TABLES, Table
from sinks import migration_0005_export_ledger as export_ledger
from sinks.cluster import alter_table_sql, create_distributed_sql, local_name, on_cluster
from sinks.errors import translated
from sinks.schema import (
    MIGRATIONS_TABLE,
    check_identifier,
    create_database_sql,
    create_migrations_table_sql,
    create_table_sql,
)
from sinks.views import create_views

log = logging.getLogger(__name__)

DB: Final = "{db}"

Migration = tuple[int, str, list[str]]


def create_tables(cluster: str | None) -> list[str]:
    """Migration 1: the database, then every table (on a cluster: local, then Distributed)."""
    statements = [create_database_sql(DB, cluster)]
    for table in TABLES.values():
        statements.append(create_table_sql(table, DB, cluster))
        if cluster:
            statements.append(create_distributed_sql(table, DB, cluster))
    return statements


def create_table(table: Table, cluster: str | None) -> list[str]:
    """One table added after migration 1 (a no-op on databases migration 1 created)."""
    statements = [create_table_sql(table, DB, cluster)]
    if cluster:
        statements.append(create_distributed_sql(table, DB, cluster))
    return statements


INCARNATION_KEYS: Final = {  # sessions that may reuse their key (docs/processing.md#lifecycle)
    "calls": ("call_id", "call_id, incarnation"),
    "streams": ("media_session_id", "media_session_id, incarnation"),
    "connections": ("session_id", "node_id, session_id, incarnation"),
}


def add_incarnation(cluster: str | None) -> list[str]:
    """Migration 4: ``incarnation`` joins the sorting key of the session tables (a no-op
    where migration 1 already created them with it), then the entity state table."""
    statements = []
    for table, (after, order_by) in INCARNATION_KEYS.items():
        add = f"ADD COLUMN IF NOT EXISTS incarnation UInt64 AFTER {after}"
        local = local_name(table, cluster)
        statements.append(
            f"ALTER TABLE {DB}.{local}{on_cluster(cluster)} {add}, MODIFY ORDER BY ({order_by})"
        )
        if cluster:
            statements += alter_table_sql(table, DB, add, cluster)[1:]
    statements += create_table(STATE, cluster)
    statements += create_table(STATUS_COUNTS_PARTS, cluster)
    return statements + create_table(MESSAGE_RATES_PARTS, cluster)


def migrations(cluster: str | None = None) -> list[Migration]:
    """The numbered migrations for one layout (same numbers and names for both)."""
    return [
        (1, "create_tables", create_tables(cluster)),
        (2, "create_kpi_views", create_views(cluster)),  # docs/kpi.md
        (3, "create_alerts", create_table(ALERTS, cluster)),  # docs/alerts.md
        (4, "session_incarnation_and_state", add_incarnation(cluster)),
        (export_ledger.NUMBER, export_ledger.NAME, export_ledger.statements(cluster)),  # rating
    ]


MIGRATIONS: Final[list[Migration]] = migrations()


def applied_versions(client: Any, database: str) -> set[int]:
    """Versions recorded in ``{db}.schema_migrations`` (empty if the table does not exist yet)."""
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": MIGRATIONS_TABLE},
    )
    if int(exists) == 0:
        return set()
    rows = client.query(f"SELECT DISTINCT version FROM {database}.{MIGRATIONS_TABLE}").result_rows
    return {int(row[0]) for row in rows}


def migrate(client: Any, database: str = "wcs", cluster: str | None = None) -> list[int]:
    """Apply the missing migrations in order; returns the numbers applied by this call.

    ``cluster``: the ``remote_servers`` cluster name for ``ON CLUSTER`` DDL (the server
    needs Keeper and ``{shard}``/``{replica}`` macros); a host that does not answer makes
    the statement fail after ``distributed_ddl_task_timeout`` and the migration is retried.

    Afterwards ``database`` is the client's default database (as ``connect`` sets it).
    Idempotent: a second run applies nothing. A failed statement raises
    ConfigError (e.g. no DDL rights), TransientError or PermanentError from
    ``sinks.errors``; the failed migration is not recorded, so the next run retries it.
    """
    check_identifier(database)
    if cluster is not None:
        check_identifier(cluster, "cluster name")
    with translated(f"migrating {database}"):
        done = applied_versions(client, database)
        todo = [m for m in migrations(cluster) if m[0] not in done]
        for number, name, statements in todo:
            _apply(client, database, cluster, number, name, statements)
        applied = [number for number, _, _ in todo]
    client.database = database  # as connect() does once the database exists
    return applied


def _apply(
    client: Any, database: str, cluster: str | None, number: int, name: str, statements: list[str]
) -> None:
    client.command(create_database_sql(database, cluster))
    client.command(create_migrations_table_sql(database, cluster))
    for statement in statements:
        client.command(statement.replace(DB, database))
    record = "SELECT {v:UInt32}, {n:String}, now64(3, 'UTC')"  # server-side parameters
    client.command(
        f"INSERT INTO {database}.{MIGRATIONS_TABLE} (version, name, applied_at) {record}",
        parameters={"v": number, "n": name},
    )
    log.info("applied migration %d %s to %s", number, name, database)
