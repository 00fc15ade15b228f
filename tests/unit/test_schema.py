"""DDL, migrations list and the events row, generated from events.tables (pure, no IO)."""

from __future__ import annotations

import re

import orjson
import pytest

from events.catalog import resolve
from events.envelope import make
from events.tables import STATE, TABLES, Table, check_row
from sinks.errors import ConfigError
from sinks.migrations import INCARNATION_KEYS, MIGRATIONS
from sinks.schema import (
    check_identifier,
    column_types,
    create_table_sql,
    envelope_row,
    version_column,
)


@pytest.mark.parametrize("table", TABLES.values(), ids=TABLES.keys())
def test_create_table_sql_lists_every_column_in_order(table: Table) -> None:
    sql = create_table_sql(table, "wcs")
    found = re.findall(r"^\s+`(\w+)` (.+?),?$", sql, flags=re.MULTILINE)
    assert found == list(table.columns)
    assert sql.startswith(f"CREATE TABLE IF NOT EXISTS wcs.{table.name} (")
    assert f"\nENGINE = {table.engine}\n" in sql
    ttl = f"\nTTL {table.ttl}" if table.ttl else ""
    assert sql.endswith(f"ORDER BY ({', '.join(table.order_by)}){ttl}")
    assert ("PARTITION BY" in sql) == (table.partition_by is not None)
    assert ("TTL" in sql) == (table.ttl is not None)


def test_entity_state_expires_entities_but_not_partition_rows() -> None:
    sql = create_table_sql(STATE, "wcs")
    assert STATE.ttl is not None
    assert sql.endswith("ORDER BY (family, key)\nTTL " + STATE.ttl)
    assert "DELETE WHERE family != ''" in STATE.ttl  # the partition rows (family '') stay
    assert {"family", "key", "part", "open", "state", "version"} <= set(STATE.column_names)


@pytest.mark.parametrize("table", sorted(INCARNATION_KEYS))
def test_session_tables_are_keyed_by_incarnation(table: str) -> None:
    """A reused key is a new row (docs/processing.md#lifecycle); migration 4 gives older
    databases the same column, position and sorting key as a fresh one."""
    spec = TABLES[table]
    assert spec.order_by[-1] == "incarnation"
    assert dict(spec.columns)["incarnation"] == "UInt64"
    after, order_by = INCARNATION_KEYS[table]
    names = spec.column_names
    assert names[names.index("incarnation") - 1] == after
    assert order_by == ", ".join(spec.order_by)
    (_, _, statements) = next(m for m in MIGRATIONS if m[0] == 4)
    (alter,) = [s for s in statements if s.startswith(f"ALTER TABLE {{db}}.{table} ")]
    assert f"ADD COLUMN IF NOT EXISTS incarnation UInt64 AFTER {after}" in alter
    assert alter.endswith(f"MODIFY ORDER BY ({order_by})")


def test_events_is_partitioned_by_month() -> None:
    assert "\nPARTITION BY toYYYYMM(received_at)\n" in create_table_sql(TABLES["events"], "x")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("events", None),
        ("calls", "version"),
        ("keepalive_gaps", "version"),
        ("messages", "version"),
    ],
)
def test_version_column(table: str, expected: str | None) -> None:
    assert version_column(TABLES[table]) == expected


def test_every_table_but_events_coalesces_by_version() -> None:
    assert {n for n, t in TABLES.items() if version_column(t) is None} == {"events"}


def test_column_types_follow_column_names() -> None:
    calls = TABLES["calls"]
    types = column_types(calls)
    assert len(types) == len(calls.column_names)
    assert types[calls.column_names.index("ringing_at")] == "Nullable(DateTime64(3, 'UTC'))"


def test_migrations_are_numbered_from_one_and_templated() -> None:
    numbers = [number for number, _, _ in MIGRATIONS]
    assert numbers == list(range(1, len(numbers) + 1))
    _, name, statements = MIGRATIONS[0]
    assert name
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS {db}"
    created = [re.search(r"EXISTS \{db\}\.(\w+) ", s) for s in statements[1:]]
    assert [m.group(1) for m in created if m] == list(TABLES)
    assert all("IF NOT EXISTS" in s for _, _, stmts in MIGRATIONS for s in stmts)
    (_, _, statements) = next(m for m in MIGRATIONS if m[0] == 4)
    assert create_table_sql(STATE, "{db}") in statements


@pytest.mark.parametrize("name", ["wcs", "test_0a1b", "_x", "A9"])
def test_check_identifier_accepts(name: str) -> None:
    assert check_identifier(name) == name


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "wcs; DROP TABLE x", "a.b", "ü", "x" * 64])
def test_check_identifier_rejects(name: str) -> None:
    with pytest.raises(ConfigError, match="database name"):
        check_identifier(name)


def test_envelope_row_fills_missing_scope_with_empty_string() -> None:
    body = {"nodeId": "n1", "callId": "c1", "text": "привет ☎"}
    envelope = make(resolve("CallStatusEvent"), body, 1_700_000_000_123, "p-1")
    table, values = row = envelope_row(envelope)
    check_row(row)
    assert table == "events"
    assert values["node_id"] == "n1"
    assert values["app_key"] == values["session_id"] == ""
    assert values["key"] == "c1"
    assert values["received_at"] == 1_700_000_000_123
    assert orjson.loads(values["body"]) == body
