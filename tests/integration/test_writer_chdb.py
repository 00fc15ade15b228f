"""ClickHouseWriter against the real chDB engine: round trips, FINAL collapse, dead letter."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from events.catalog import resolve
from events.envelope import make
from events.tables import TABLES, Row, check_row
from sinks.errors import ConfigError
from sinks.migrations import migrate
from sinks.writer import ClickHouseWriter

pytestmark = pytest.mark.integration

BASE_MS = 1_700_000_000_123  # 2023-11-14 22:13:20.123 UTC


def sample_value(name: str, kind: str, i: int) -> Any:
    """A representative value: unicode strings, ms times, None in every other Nullable."""
    absent = i % 2 == 0
    if "DateTime64" in kind:
        return None if absent and kind.startswith("Nullable") else BASE_MS + i * 1000 + len(name)
    if kind.startswith("Nullable"):
        return None if absent else -7 * i
    if kind == "Bool":
        return i % 2 == 1
    if kind == "UInt8":
        return 0
    if kind.startswith("Float"):  # alerts.ratio / baseline
        return i * 0.25
    if "Int" in kind:
        return i * 11 if kind.startswith("U") else -i * 3
    if kind.startswith("LowCardinality"):
        return "defaultApp-ü"
    return f"{name}-{i}-ünïcødé ☎ 😀"


def sample_row(table: str, i: int, version: int = 1, **overrides: Any) -> Row:
    values = {name: sample_value(name, kind, i) for name, kind in TABLES[table].columns}
    if "version" in values:
        values["version"] = version
    row = (table, values | overrides)
    check_row(row)
    return row


def read_final(client: Any, database: str, table: str) -> list[dict[str, Any]]:
    """Rows under FINAL with times as int epoch ms, ordered by the table's key."""
    spec = TABLES[table]
    select = ", ".join(
        f"toUnixTimestamp64Milli(`{n}`)" if "DateTime64" in k else f"`{n}`" for n, k in spec.columns
    )
    result = client.query(
        f"SELECT {select} FROM {database}.{table} FINAL ORDER BY {', '.join(spec.order_by)}"
    )
    return [dict(zip(spec.column_names, row, strict=True)) for row in result.result_rows]


def count(client: Any, database: str, table: str, final: bool = False) -> int:
    return int(client.command(f"SELECT count() FROM {database}.{table}{' FINAL' if final else ''}"))


@pytest.fixture
def db(ch_client, fresh_db) -> str:
    migrate(ch_client, fresh_db)
    return fresh_db


@pytest.fixture
def writer(ch_client, db) -> ClickHouseWriter:
    return ClickHouseWriter(ch_client, db, now_ms=lambda: 0, sleep=lambda _: None)


def sort_key(table: str):
    return lambda values: tuple(values[c] for c in TABLES[table].order_by)


@pytest.mark.parametrize("table", TABLES)
def test_round_trip_every_table(ch_client, db, writer, table):
    # entity_state rows expire (TTL) 8 days after written_at: a background merge may drop old ones
    fresh = {"written_at": int(time.time() * 1000)} if TABLES[table].ttl else {}
    rows = [sample_row(table, i, **fresh) for i in range(4)]
    writer.add(rows)
    assert writer.flush() == 4
    expected = sorted((values for _, values in rows), key=sort_key(table))
    assert read_final(ch_client, db, table) == expected


def test_times_are_stored_as_utc_milliseconds(ch_client, db, writer):
    writer.add([sample_row("calls", 0, created_at=BASE_MS, ringing_at=None, answered_at=BASE_MS)])
    writer.flush()
    created, ringing, answered = ch_client.query(
        f"SELECT toString(created_at), ringing_at IS NULL, toString(answered_at) FROM {db}.calls"
    ).result_rows[0]
    assert created == answered == "2023-11-14 22:13:20.123"
    assert ringing == 1


def test_envelope_round_trip(ch_client, db, writer):
    body = {"nodeId": "n1", "callId": "c-1", "text": "Привет ☎ 😀", "nested": {"a": [1, None]}}
    writer.add_envelope(make(resolve("OnCallEvent"), body, BASE_MS, "p-1"))
    writer.flush()
    (row,) = read_final(ch_client, db, "events")
    assert orjson.loads(row.pop("body")) == body
    assert row == {
        "id": "p-1",
        "received_at": BASE_MS,
        "method": "OnCallEvent",
        "family": "call",
        "key": "c-1",
        "node_id": "n1",
        "app_key": "",
        "session_id": "",
    }


def test_every_version_is_inserted_and_final_keeps_the_latest(ch_client, db, writer):
    """The runtime renders an entity once per flush; the writer keeps whatever it is given,
    in one insert per table, and FINAL keeps the highest version."""
    for version in range(1, 51):
        writer.add([sample_row("calls", 1, version, status=f"v{version}"), sample_row("calls", 2)])
    assert writer.flush() == 100
    assert writer.stats["inserts"] == 1
    assert [r["status"] for r in read_final(ch_client, db, "calls")] == ["v50", "defaultApp-ü"]


def test_replay_collapses_under_final(ch_client, db, writer):
    ch_client.command(f"SYSTEM STOP MERGES {db}.calls")
    ch_client.command(f"SYSTEM STOP MERGES {db}.events")
    rows = [sample_row("calls", i, version=3) for i in range(3)]
    envelope = make(resolve("hangup"), {"callId": "c"}, BASE_MS, "p-9")
    for _ in range(2):  # the same input twice, as after a crash before the offset commit
        writer.add(rows)
        writer.add_envelope(envelope)
        writer.flush()
    assert count(ch_client, db, "calls") == 6
    assert count(ch_client, db, "calls", final=True) == 3
    assert count(ch_client, db, "events") == 2
    assert count(ch_client, db, "events", final=True) == 1
    assert read_final(ch_client, db, "calls") == [values for _, values in rows]


def test_higher_version_wins_across_flushes(ch_client, db, writer):
    for version, status in ((1, "ringing"), (3, "finished"), (2, "late replay")):
        writer.add([sample_row("calls", 1, version, status=status)])
        writer.flush()
    (row,) = read_final(ch_client, db, "calls")
    assert (row["version"], row["status"]) == (3, "finished")


def test_deleted_keepalive_gap_disappears_under_final(ch_client, db, writer):
    split = sample_row("keepalive_gaps", 1, version=1)
    kept = sample_row("keepalive_gaps", 2, version=1)
    writer.add([split, kept])
    writer.flush()
    writer.add([("keepalive_gaps", split[1] | {"is_deleted": 1, "version": 2})])
    writer.flush()
    assert read_final(ch_client, db, "keepalive_gaps") == [kept[1]]


def test_rejected_row_goes_to_the_dead_letter_file(ch_client, db, tmp_path):
    dead = tmp_path / "dead" / "rows.ndjson"
    writer = ClickHouseWriter(ch_client, db, now_ms=lambda: 0, dead_letter=dead)
    bad = sample_row("calls", 5, hold_ms="not a number")
    writer.add([sample_row("calls", 1), bad, sample_row("calls", 3)])
    assert writer.flush() == 2
    (entry,) = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert entry["table"] == "calls"
    assert entry["row"] == bad[1]
    assert "hold_ms" in entry["reason"] or "int()" in entry["reason"]
    assert [r["call_id"] for r in read_final(ch_client, db, "calls")] == [
        sample_row("calls", i)[1]["call_id"] for i in (1, 3)
    ]
    assert writer.stats["dead_lettered"] == 1


def test_missing_schema_is_a_config_error_and_rows_stay_pending(ch_client, fresh_db):
    writer = ClickHouseWriter(ch_client, fresh_db, now_ms=lambda: 0, sleep=lambda _: None)
    writer.add([sample_row("calls", 1)])
    with pytest.raises(ConfigError, match=r"UNKNOWN_DATABASE|does not exist"):
        writer.flush()
    assert writer.pending == 1
    migrate(ch_client, fresh_db)
    assert writer.flush() == 1
