"""Cluster DDL (ON CLUSTER, Replicated*MergeTree local tables, Distributed tables): pure strings."""

from __future__ import annotations

import re

import pytest

from events.tables import TABLES
from sinks.cluster import (
    alter_table_sql,
    create_distributed_sql,
    replicated_engine,
    sharding_key,
)
from sinks.errors import ConfigError
from sinks.migrations import MIGRATIONS, migrate, migrations
from sinks.schema import create_database_sql, create_migrations_table_sql, create_table_sql

SHARD = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ("ReplacingMergeTree", f"ReplicatedReplacingMergeTree({SHARD})"),
        ("ReplacingMergeTree(version)", f"ReplicatedReplacingMergeTree({SHARD}, version)"),
        (
            "ReplacingMergeTree(version, is_deleted)",
            f"ReplicatedReplacingMergeTree({SHARD}, version, is_deleted)",
        ),
        ("MergeTree", f"ReplicatedMergeTree({SHARD})"),
    ],
)
def test_replicated_engine_keeps_the_engine_arguments(engine, expected):
    assert replicated_engine(engine) == expected


@pytest.mark.parametrize("engine", ["Memory", "Distributed(c, db, t)", ""])
def test_replicated_engine_rejects_non_mergetree(engine):
    with pytest.raises(ValueError, match="not a MergeTree"):
        replicated_engine(engine)


def test_single_server_ddl_is_unchanged_by_default():
    calls = TABLES["calls"]
    assert create_table_sql(calls, "wcs") == create_table_sql(calls, "wcs", None)
    sql = create_table_sql(calls, "wcs")
    assert "ON CLUSTER" not in sql and "Replicated" not in sql
    assert sql.startswith("CREATE TABLE IF NOT EXISTS wcs.calls (")
    assert create_database_sql("wcs") == "CREATE DATABASE IF NOT EXISTS wcs"
    assert "ENGINE = ReplacingMergeTree ORDER BY" in create_migrations_table_sql("wcs")


@pytest.mark.parametrize("table", TABLES.values(), ids=TABLES.keys())
def test_cluster_local_table_is_replicated_with_the_same_columns_and_keys(table):
    single = create_table_sql(table, "wcs")
    sql = create_table_sql(table, "wcs", "prod")
    assert sql.startswith(f"CREATE TABLE IF NOT EXISTS wcs.{table.name}_local ON CLUSTER prod (")
    assert f"\nENGINE = {replicated_engine(table.engine)}\n" in sql
    # columns, PARTITION BY and ORDER BY are exactly the single-server ones
    assert single.split(" (\n", 1)[1].split("\nENGINE")[0] in sql
    assert (
        sql.split("\nENGINE = ")[1].split("\n", 1)[1]
        == single.split("\nENGINE = ")[1].split("\n", 1)[1]
    )


def test_distributed_table_keeps_the_public_name_and_shards_by_the_order_key():
    sql = create_distributed_sql(TABLES["keepalive_gaps"], "wcs", "prod")
    assert sql == (
        "CREATE TABLE IF NOT EXISTS wcs.keepalive_gaps ON CLUSTER prod AS wcs.keepalive_gaps_local"
        "\nENGINE = Distributed('prod', 'wcs', 'keepalive_gaps_local',"
        " cityHash64(media_session_id, gap_start))"
    )


@pytest.mark.parametrize("table", TABLES.values(), ids=TABLES.keys())
def test_sharding_key_uses_only_order_by_columns(table):
    """Rows that collapse under FINAL share their ORDER BY key, hence their shard."""
    columns = re.fullmatch(r"cityHash64\((.+)\)", sharding_key(table))
    assert columns is not None
    assert tuple(columns.group(1).split(", ")) == table.order_by


def test_cluster_migration_creates_local_then_distributed_for_every_table():
    (number, name, statements), *rest = migrations("prod")
    assert (number, name) == (MIGRATIONS[0][0], MIGRATIONS[0][1])
    assert len(rest) == len(MIGRATIONS) - 1
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER prod"
    created = [
        re.match(r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+) ON CLUSTER prod ", s)
        for s in statements[1:]
    ]
    names = [m.group(1) for m in created if m]
    assert len(names) == len(statements) - 1
    assert names == [n for t in TABLES for n in (f"{t}_local", t)]
    assert all("ON CLUSTER prod" in s for s in statements)


def test_migrations_record_is_replicated_to_every_node():
    sql = create_migrations_table_sql("wcs", "prod")
    assert "wcs.schema_migrations ON CLUSTER prod " in sql
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}',"
        " '{shard}-{replica}')" in sql
    )
    assert "{shard}/" not in sql  # one Keeper path for all shards


def test_alter_covers_local_then_distributed_on_a_cluster():
    clause = "ADD COLUMN IF NOT EXISTS x String"
    assert alter_table_sql("calls", "wcs", clause, None) == [f"ALTER TABLE wcs.calls {clause}"]
    assert alter_table_sql("calls", "wcs", clause, "prod") == [
        f"ALTER TABLE wcs.calls_local ON CLUSTER prod {clause}",
        f"ALTER TABLE wcs.calls ON CLUSTER prod {clause}",
    ]


@pytest.mark.parametrize("cluster", ["", "a-b", "x; DROP DATABASE wcs", "1c"])
def test_migrate_rejects_a_bad_cluster_name_before_any_io(cluster):
    class NoIO:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"client.{name} used")

    with pytest.raises(ConfigError, match="cluster name"):
        migrate(NoIO(), "wcs", cluster=cluster)
