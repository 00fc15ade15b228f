"""KPI views (sinks/views.py, docs/kpi.md) on the real engine against hand-computed values.

Rows go through ClickHouseWriter in two flushes with merges stopped: the older
versions of re-emitted entities (and one exact duplicate) sit in their own parts,
so a view that forgot ``FINAL`` would double count. Times are seconds after M0
(22:14:00 UTC); minute Mk is M0 + k minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from events.tables import Row
from sinks import migrations as migrations_module
from sinks.migrations import migrate
from sinks.views import VIEWS
from sinks.writer import ClickHouseWriter
from tests.integration.kpi_rows import M0, at, call, gap, message, stream

pytestmark = pytest.mark.integration

MIN = 60_000
M1, M2 = M0 + MIN, M0 + 2 * MIN
ENTITY_TABLES = ("calls", "streams", "keepalive_gaps", "messages")

FIRST: list[Row] = [  # superseded versions, each entity's re-emitted row is in LATER
    call("c1", 1, at(10), ringing=at(12), disposition="IN_PROGRESS"),
    call("c1", 2, at(10), ringing=at(12), answered=at(15), disposition="ANSWERED"),
    call("c2", 1, at(20), ringing=at(24), ended=at(28), disposition="NO_ANSWER"),
    call("c3", 1, at(40), disposition="IN_PROGRESS"),
    call("c4", 1, at(50), ringing=at(51), ended=at(110), disposition="NO_ANSWER"),
    stream("s1", 1, at(5), "publish", started=at(6)),
    gap("s1", 1, at(20), at(40)),
    gap("s1", 4, at(90), at(118)),
    message("m1", 1, at(1), "SENT", imdn_required=True, sent_at=at(1)),
    message("m1", 2, at(1), "ACCEPTED", imdn_required=True, sent_at=at(1), accepted_at=at(2)),
]

LATER: list[Row] = [
    # calls of A/n1 in M0: c1 answered [10, 90), c2 busy [20, 30), c3 failed [40, 41),
    # c4 no answer [50, 110) (its v1 again: an exact duplicate), c7 failed zero-length at 41
    call("c1", 3, at(10), ringing=at(12), answered=at(15), ended=at(90), disposition="ANSWERED"),
    call("c2", 2, at(20), ringing=at(24), ended=at(30), disposition="BUSY", sip=486, info="Busy"),
    call("c3", 2, at(40), ended=at(41), disposition="FAILED", sip=503, info="Unavailable"),
    call("c4", 1, at(50), ringing=at(51), ended=at(110), disposition="NO_ANSWER"),
    call("c7", 1, at(41), ended=at(41), disposition="FAILED", sip=503, info="Unavailable"),
    # A/n1 in M1: c9 [65, 80), c10 [110, 125) never rang
    call("c9", 1, at(65), ringing=at(67), answered=at(70), ended=at(80), disposition="ANSWERED"),
    call("c10", 1, at(110), answered=at(115), ended=at(125), disposition="ANSWERED"),
    # A/n2: c6 [30, 120) ends exactly on M2; B/n1: c8 [35, 55)
    call(
        "c6",
        1,
        at(30),
        node="n2",
        ringing=at(31),
        answered=at(32),
        ended=at(120),
        disposition="ANSWERED",
    ),
    call(
        "c8",
        1,
        at(35),
        app="B",
        ringing=at(35.5),
        answered=at(36),
        ended=at(55),
        disposition="ANSWERED",
    ),
    # streams of A/n1: s1 publish [6, 126), s2 play [21, 51), s3 hls [40, 70) failed after
    # playing, s4 play failed before playing, s5 zero-length publish at 60;
    # B/n2: s7 rtsp of exactly 2 h starting at 0 (the open-ended lifetime bucket)
    stream("s1", 2, at(5), "publish", started=at(6), ended=at(126), final_status="UNPUBLISHED"),
    stream("s2", 1, at(20), "play", started=at(21), ended=at(51), final_status="STOPPED"),
    stream("s3", 1, at(30), "hls", started=at(40), ended=at(70), final_status="FAILED"),
    stream("s4", 1, at(55), "play", ended=at(57), final_status="FAILED"),
    stream("s5", 1, at(60), "publish", started=at(60), ended=at(60), final_status="UNPUBLISHED"),
    stream(
        "s7",
        1,
        at(0),
        "rtsp",
        app="B",
        node="n2",
        started=at(0),
        ended=at(7200),
        final_status="STOPPED",
    ),
    # keep-alive gaps: s1's gap at 20 was split below the threshold (deleted), its gap at 90
    # was split at 107 (shortened); s3 has one gap
    gap("s1", 2, at(20), at(40), deleted=True),
    gap("s1", 3, at(60), at(80)),
    gap("s1", 5, at(90), at(107)),
    gap("s3", 1, at(45), at(65)),
    # messages, A/n1 in M0: m1 IMDN delivered, m2 failed, m3 accepted, m4 IMDN failed without
    # isImdnRequired, m5 incoming; m6 sent in M1; B/n1: m7 incoming only
    message(
        "m1",
        3,
        at(1),
        "IMDN_DELIVERED",
        imdn_required=True,
        sent_at=at(1),
        accepted_at=at(2),
        delivered_at=at(5),
    ),
    message("m2", 1, at(10), "FAILED", imdn_required=True, sent_at=at(10), failed_at=at(11)),
    message("m3", 1, at(20), "ACCEPTED", sent_at=at(20), accepted_at=at(21)),
    message("m4", 1, at(30), "IMDN_FAILED", sent_at=at(30), accepted_at=at(31)),
    message("m5", 1, at(40), "RECEIVED", received_at=at(40)),
    message("m6", 1, at(60), "SENT", sent_at=at(60)),
    message("m7", 1, at(5), "RECEIVED", app="B", received_at=at(5)),
]


def write(client: Any, database: str, *batches: list[Row]) -> None:
    """One flush per batch (no coalescing across them), merges stopped: versions stay apart."""
    for table in ENTITY_TABLES:
        client.command(f"SYSTEM STOP MERGES {database}.{table}")
    writer = ClickHouseWriter(client, database, now_ms=lambda: M0)
    for batch in batches:
        writer.add(batch)
        writer.flush()


@pytest.fixture
def db(ch_client: Any, fresh_db: str) -> Iterator[str]:
    migrate(ch_client, fresh_db)
    write(ch_client, fresh_db, FIRST, LATER)
    yield fresh_db


def rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(sql).result_rows]


def minute(ms: int) -> int:
    return ms // 1000


def test_the_fixture_really_holds_superseded_versions(ch_client, db):
    raw = ch_client.command(f"SELECT count() FROM {db}.calls")
    final = ch_client.command(f"SELECT count() FROM {db}.calls FINAL")
    # 14 rows written, c1's v1 and v2 collapse on insert (same block); 9 calls
    assert (raw, final) == (13, 9)
    gaps = f"SELECT count() FROM {db}.keepalive_gaps"
    assert (ch_client.command(gaps), ch_client.command(gaps + " FINAL")) == (6, 3)  # s1@20 deleted


def test_calls_minute(ch_client, db):
    got = rows(
        ch_client,
        "SELECT toUnixTimestamp(window_start), app_key, node_id, attempts, answered, busy,"
        " failed, no_answer, in_progress, asr, ner, acd_ms, pdd_avg_ms, pdd_p95_ms, setup_avg_ms"
        f" FROM {db}.kpi_calls_minute ORDER BY 1, 2, 3",
    )
    assert got == [
        # c1 c2 c3 c4 c7: pdd 2000, 4000, 1000 -> p95 at rank 0.95 * 2 = 1.9: 2000 + 0.9 * 2000
        (minute(M0), "A", "n1", 5, 1, 1, 2, 1, 0, 0.2, 0.6, 75_000, 7000 / 3, 3800, 5000),
        (minute(M0), "A", "n2", 1, 1, 0, 0, 0, 0, 1.0, 1.0, 88_000, 1000, 1000, 2000),
        (minute(M0), "B", "n1", 1, 1, 0, 0, 0, 0, 1.0, 1.0, 19_000, 500, 500, 1000),
        (minute(M1), "A", "n1", 2, 2, 0, 0, 0, 0, 1.0, 1.0, 10_000, 2000, 2000, 5000),
    ]


def test_call_failures_follow_the_final_disposition(ch_client, db):
    got = rows(
        ch_client,
        "SELECT toUnixTimestamp(window_start), app_key, node_id, disposition, info, sip_status,"
        f" calls FROM {db}.kpi_call_failures ORDER BY calls DESC, disposition",
    )
    assert got == [
        (minute(M0), "A", "n1", "FAILED", "Unavailable", 503, 2),
        (minute(M0), "A", "n1", "BUSY", "Busy", 486, 1),
        (minute(M0), "A", "n1", "NO_ANSWER", "", None, 1),
    ]


def concurrency(
    client: Any, db: str, where: str, start: int = M0
) -> dict[tuple[str, str, str], list[int]]:
    """(app_key, node_id, kind) -> concurrent per minute from ``start`` on (no minute missing)."""
    found: dict[tuple[str, str, str], list[int]] = {}
    sql = (
        "SELECT app_key, node_id, kind, toUnixTimestamp(minute), concurrent"
        f" FROM {db}.kpi_concurrency_minute WHERE {where} ORDER BY 1, 2, 3, 4"
    )
    for app, node, kind, at_s, value in rows(client, sql):
        series = found.setdefault((app, node, kind), [])
        assert at_s == minute(start) + 60 * len(series), "a minute is missing"
        series.append(value)
    return found


def test_call_concurrency_sweep_per_scope(ch_client, db):
    # A/n1 levels: 10:1 20:2 30:1 40:2 41:1 (c7 zero-length) 50:2 65:3 80:2 90:1 110:1 125:0
    assert concurrency(ch_client, db, "kind = 'call'") == {
        ("A", "n1", "call"): [2, 3, 1],
        ("A", "n2", "call"): [1, 1, 0],  # ends exactly at M2: M2 only sees the drop to 0
        ("B", "n1", "call"): [1],
        ("A", "*", "call"): [3, 4, 1],
        ("B", "*", "call"): [1],
        ("*", "n1", "call"): [3, 3, 1],
        ("*", "n2", "call"): [1, 1, 0],
        ("*", "*", "call"): [4, 4, 1],
    }


def test_stream_concurrency_counts_started_streams_only(ch_client, db):
    got = concurrency(ch_client, db, "app_key = 'A' AND node_id = 'n1'")
    del got[("A", "n1", "call")]
    assert got == {
        ("A", "n1", "publish"): [1, 1, 1],  # s1 [6, 126); s5 zero-length; s4 never started
        ("A", "n1", "play"): [1],
        ("A", "n1", "hls"): [1, 1],
        ("A", "n1", "viewer"): [2, 1],  # s2 + s3 overlap in [40, 51)
    }
    rtsp = concurrency(ch_client, db, "node_id = '*' AND app_key = 'B' AND kind = 'rtsp'")
    assert rtsp == {("B", "*", "rtsp"): [1] * 120 + [0]}


def test_concurrency_peaks(ch_client, db):
    sql = (
        "SELECT app_key, node_id, kind, toUnixTimestamp(window_start), peak,"
        " toUnixTimestamp(peak_minute) FROM {db}.kpi_concurrency_peak_{unit}"
        " WHERE kind = 'call' AND app_key != 'B' ORDER BY 1, 2, 3"
    )
    hour, day = minute(M0) - 14 * 60, minute(M0) - (22 * 60 + 14) * 60
    for unit, start in (("hour", hour), ("day", day)):
        assert rows(ch_client, sql.format(db=db, unit=unit)) == [
            ("*", "*", "call", start, 4, minute(M0)),  # 4 in M0 and M1: the first minute
            ("*", "n1", "call", start, 3, minute(M0)),
            ("*", "n2", "call", start, 1, minute(M0)),
            ("A", "*", "call", start, 4, minute(M1)),
            ("A", "n1", "call", start, 3, minute(M1)),
            ("A", "n2", "call", start, 1, minute(M0)),
        ]
    rtsp = f"SELECT count(), max(peak) FROM {db}.kpi_concurrency_peak_hour WHERE kind = 'rtsp'"
    assert rows(ch_client, rtsp) == [(4 * 3, 1)]  # 4 scopes x hours 22, 23, 00


def test_streams_minute(ch_client, db):
    got = rows(
        ch_client,
        "SELECT toUnixTimestamp(window_start), publishers, viewers, startup_failures,"
        f" publish_minutes, viewer_minutes FROM {db}.kpi_streams_minute"
        " WHERE app_key = 'A' ORDER BY 1",
    )
    assert got == [
        # s1 54 s in M0; s2 30 s + s3 20 s; s4 failed before playing
        (minute(M0), 1, 3, 1, pytest.approx(0.9), pytest.approx(50 / 60)),
        (minute(M1), 1, 0, 0, pytest.approx(1.0), pytest.approx(10 / 60)),  # s5 created
        (minute(M2), 0, 0, 0, pytest.approx(0.1), 0.0),
    ]
    b = f"SELECT count(), sum(viewers), sum(viewer_minutes) FROM {db}.kpi_streams_minute"
    assert rows(ch_client, b + " WHERE app_key = 'B'") == [(120, 1, pytest.approx(120.0))]


def test_stream_lifetimes_histogram(ch_client, db):
    got = rows(
        ch_client,
        "SELECT app_key, kind, bucket, bucket_lo_ms, bucket_hi_ms, streams,"
        f" toUnixTimestamp(window_start) FROM {db}.kpi_stream_lifetimes ORDER BY 1, 2, 3",
    )
    hour = minute(M0) - 14 * 60
    assert got == [
        ("A", "hls", 3, 30_000, 60_000, 1, hour),  # 30 s sits in [30 s, 60 s)
        ("A", "play", 3, 30_000, 60_000, 1, hour),  # s4 never started: no lifetime
        ("A", "publish", 1, 0, 10_000, 1, hour),  # s5: 0 ms
        ("A", "publish", 4, 60_000, 300_000, 1, hour),  # s1: 120 s
        ("B", "rtsp", 8, 3_600_000, None, 1, hour),  # 2 h: the open-ended bucket
    ]


def test_keepalive_gaps_per_stream_and_node(ch_client, db):
    per_stream = rows(
        ch_client,
        "SELECT media_session_id, app_key, node_id, name, gaps, gap_total_ms, gap_max_ms,"
        " toUnixTimestamp64Milli(first_gap_start), toUnixTimestamp64Milli(last_gap_end)"
        f" FROM {db}.kpi_keepalive_gaps_stream ORDER BY 1",
    )
    assert per_stream == [
        ("s1", "A", "n1", "name-s1", 2, 37_000, 20_000, at(60), at(107)),
        ("s3", "A", "n1", "name-s3", 1, 20_000, 20_000, at(45), at(65)),
    ]
    per_node = rows(
        ch_client,
        "SELECT toUnixTimestamp(window_start), app_key, node_id, gaps, streams, gap_total_ms,"
        f" gap_max_ms, gap_avg_ms FROM {db}.kpi_keepalive_gaps_node ORDER BY 1",
    )
    assert per_node == [
        (minute(M0), "A", "n1", 1, 1, 20_000, 20_000, 20_000),
        (minute(M1), "A", "n1", 2, 1, 37_000, 20_000, 18_500),
    ]


def test_messages(ch_client, db):
    got = rows(
        ch_client,
        "SELECT toUnixTimestamp(window_start), app_key, sent, accepted, delivery_rate,"
        " imdn_requested, imdn_delivered, imdn_delivery_rate, imdn_failed, failed, failure_rate,"
        f" received FROM {db}.kpi_messages ORDER BY 1, 2",
    )
    assert got == [
        (minute(M0), "A", 4, 3, 0.75, 3, 1, pytest.approx(1 / 3), 1, 1, 0.25, 1),
        (minute(M0), "B", 0, 0, None, 0, 0, None, 0, 0, None, 1),
        (minute(M1), "A", 1, 0, 0.0, 0, 0, None, 0, 0, 0.0, 0),
    ]


def test_open_sessions_run_until_now(ch_client, fresh_db):
    migrate(ch_client, fresh_db)
    now_sql = "SELECT toUnixTimestamp64Milli(now64(3))"
    now = ch_client.command(now_sql)
    base = now - now % MIN - 3 * MIN  # three whole minutes before the current one
    write(
        ch_client,
        fresh_db,
        [
            call("o1", 1, at(10, base), disposition="IN_PROGRESS"),
            stream("o2", 1, at(20, base), "publish", started=at(20, base)),
        ],
    )
    streams_sql = (
        "SELECT publishers, publish_minutes"
        f" FROM {fresh_db}.kpi_streams_minute ORDER BY window_start"
    )
    for _ in range(5):  # retry when the clock crosses a minute during the queries
        before = ch_client.command(now_sql)
        calls = rows(ch_client, f"SELECT * EXCEPT window_start FROM {fresh_db}.kpi_calls_minute")
        series = concurrency(ch_client, fresh_db, "app_key = 'A' AND node_id = 'n1'", base)
        streams = rows(ch_client, streams_sql)
        after = ch_client.command(now_sql)
        if before // MIN == after // MIN and before % MIN >= 1000:
            break
        time.sleep(1)
    assert calls == [("A", "n1", 1, 0, 0, 0, 0, 1, 0.0, 0.0, None, None, None, None)]
    assert series == {("A", "n1", "call"): [1] * 4, ("A", "n1", "publish"): [1] * 4}
    *full, (publishers, current) = streams
    assert full == [(1, pytest.approx(40 / 60)), (0, 1.0), (0, 1.0)]
    assert publishers == 0
    assert (before % MIN) / MIN <= current <= (after % MIN) / MIN


def test_views_come_with_migration_2_on_an_existing_database(ch_client, fresh_db, monkeypatch):
    every = migrations_module.migrations
    monkeypatch.setattr(migrations_module, "migrations", lambda cluster=None: every(cluster)[:1])
    assert migrate(ch_client, fresh_db) == [1]
    write(ch_client, fresh_db, FIRST, LATER)  # data from before the upgrade
    monkeypatch.undo()
    assert migrate(ch_client, fresh_db) == [
        2,
        3,
        4,
        5,
    ]  # 3: alerts, 4: incarnation and state, 5: export ledger
    views = ch_client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'View'",
        parameters={"db": fresh_db},
    ).result_rows
    assert sorted(name for (name,) in views) == sorted(VIEWS)
    assert ch_client.command(f"SELECT sum(attempts) FROM {fresh_db}.kpi_calls_minute") == 9


COLUMNS = {  # docs/kpi.md documents exactly these
    "kpi_calls_minute": "window_start app_key node_id attempts answered busy failed no_answer"
    " in_progress asr ner acd_ms pdd_avg_ms pdd_p95_ms setup_avg_ms",
    "kpi_call_failures": "window_start app_key node_id disposition info sip_status calls",
    "kpi_concurrency_minute": "minute app_key node_id kind concurrent",
    "kpi_concurrency_peak_hour": "window_start app_key node_id kind peak peak_minute",
    "kpi_concurrency_peak_day": "window_start app_key node_id kind peak peak_minute",
    "kpi_streams_minute": "window_start app_key node_id publishers viewers startup_failures"
    " publish_minutes viewer_minutes",
    "kpi_stream_lifetimes": "window_start app_key node_id kind bucket bucket_lo_ms bucket_hi_ms"
    " streams",
    "kpi_keepalive_gaps_stream": "media_session_id app_key node_id name gaps gap_total_ms"
    " gap_max_ms first_gap_start last_gap_end",
    "kpi_keepalive_gaps_node": "window_start app_key node_id gaps streams gap_total_ms gap_max_ms"
    " gap_avg_ms",
    "kpi_messages": "window_start app_key node_id sent accepted delivery_rate imdn_requested"
    " imdn_delivered imdn_delivery_rate imdn_failed failed failure_rate received",
}


def test_view_columns_are_the_documented_ones(ch_client, fresh_db):
    migrate(ch_client, fresh_db)
    assert set(COLUMNS) == set(VIEWS)
    for name, expected in COLUMNS.items():
        described = ch_client.query(f"DESCRIBE TABLE {fresh_db}.{name}").result_rows
        assert [row[0] for row in described] == expected.split(), name
