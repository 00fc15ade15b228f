"""Migrations against the real chDB engine."""

from __future__ import annotations

import pytest

from events.tables import TABLES
from sinks.client import connect
from sinks.errors import ConfigError
from sinks.exports.ledger_tables import LEDGER_TABLES
from sinks.migrations import MIGRATIONS, migrate
from sinks.schema import create_table_sql

pytestmark = pytest.mark.integration

ALL = [number for number, _, _ in MIGRATIONS]


def test_migrate_applies_all_then_nothing(ch_client, fresh_db):
    assert migrate(ch_client, fresh_db) == ALL
    assert migrate(ch_client, fresh_db) == []
    recorded = ch_client.query(
        "SELECT version, name, toUnixTimestamp64Milli(applied_at)"
        f" FROM {fresh_db}.schema_migrations ORDER BY version"
    ).result_rows
    assert [(v, n) for v, n, _ in recorded] == [(n, name) for n, name, _ in MIGRATIONS]
    assert all(at > 1_700_000_000_000 for _, _, at in recorded)


def test_every_table_has_exactly_the_contract_columns(ch_client, fresh_db):
    migrate(ch_client, fresh_db)
    columns = ch_client.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String}"
        " AND table IN (SELECT name FROM system.tables WHERE database = {db:String}"
        " AND engine != 'View')"  # the KPI views (migration 2) are checked in test_kpi_views
        " ORDER BY table, position",
        parameters={"db": fresh_db},
    ).result_rows
    found: dict[str, list[tuple[str, str]]] = {}
    for table, name, kind in columns:
        found.setdefault(table, []).append((name, kind))
    assert set(found) == {*TABLES, *LEDGER_TABLES, "schema_migrations"}
    for name, table in (TABLES | LEDGER_TABLES).items():
        assert found[name] == list(table.columns), name


def test_engines_keys_and_partitions_follow_the_contract(ch_client, fresh_db):
    migrate(ch_client, fresh_db)
    rows = ch_client.query(
        "SELECT name, engine_full, sorting_key, partition_key FROM system.tables"
        " WHERE database = {db:String}",
        parameters={"db": fresh_db},
    ).result_rows
    meta = {name: (engine, key, partition) for name, engine, key, partition in rows}
    for name, table in (TABLES | LEDGER_TABLES).items():
        engine, key, partition = meta[name]
        assert engine.startswith(f"{table.engine} "), name
        assert key.removeprefix("(").removesuffix(")") == ", ".join(table.order_by)
        assert partition == (table.partition_by or "")


def test_migrate_completes_a_half_created_schema(ch_client, fresh_db):
    ch_client.command(f"CREATE DATABASE {fresh_db}")
    ch_client.command(create_table_sql(TABLES["calls"], fresh_db))
    ch_client.command(f"INSERT INTO {fresh_db}.calls (call_id, version) VALUES ('kept', 1)")
    assert migrate(ch_client, fresh_db) == ALL
    assert ch_client.command(f"SELECT call_id FROM {fresh_db}.calls") == "kept"
    assert ch_client.command(f"EXISTS TABLE {fresh_db}.streams") == 1


def test_databases_are_independent(ch_client, fresh_db):
    migrate(ch_client, fresh_db)
    other = f"{fresh_db}_b"
    try:
        assert migrate(ch_client, other) == ALL
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS {other} SYNC")


def test_bad_database_name_is_refused_before_any_sql(ch_client):
    with pytest.raises(ConfigError, match="database name"):
        migrate(ch_client, "wcs; DROP DATABASE default")


def test_driver_errors_come_out_as_sink_errors(chdb_dsn, fresh_db):
    client = connect(chdb_dsn, "default")
    client.close()
    with pytest.raises(ConfigError, match=f"migrating {fresh_db}: .*closed"):
        migrate(client, fresh_db)
