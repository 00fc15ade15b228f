"""Exports (sinks/exports) on the real engine against files written out by hand.

Rows come from tests/integration/export_rows.py: superseded versions in one part and the
final rows written twice (a replay), merges stopped, so anything read without FINAL or
joined before collapsing would count twice. The period is [22:14:00, 22:24:00) UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.exports import export_chunks, make_spec
from sinks.exports.rounding import billable_seconds, billable_sql, parse_rounding
from sinks.migrations import migrate
from sinks.writer import ClickHouseWriter
from tests.integration.export_rows import FIRST, FROM, LATER, TO
from tests.integration.kpi_rows import M0

pytestmark = pytest.mark.integration

TABLES = ("calls", "streams", "messages", "connections")
BILLING_HEADER = (
    "answered_calls,talk_seconds,billable_seconds,publish_streams,publish_minutes,"
    "viewer_streams,viewer_minutes,messages_sent"
)


@pytest.fixture
def db(ch_client: Any, fresh_db: str) -> Iterator[str]:
    migrate(ch_client, fresh_db)
    for table in TABLES:
        ch_client.command(f"SYSTEM STOP MERGES {fresh_db}.{table}")
    writer = ClickHouseWriter(ch_client, fresh_db, now_ms=lambda: M0)
    for batch in (FIRST, LATER, LATER):
        writer.add(batch)
        writer.flush()
    yield fresh_db


def export(client: Any, db: str, kind: str, start: int = FROM, end: int = TO, **opts: str) -> str:
    spec = make_spec(kind, str(start), str(end), opts.get("group_by"), opts.get("rounding"),
                     opts.get("fmt"))  # fmt: skip
    return b"".join(export_chunks(client, db, spec)).decode()


def test_the_fixture_really_holds_duplicates(ch_client: Any, db: str) -> None:
    raw = ch_client.command(f"SELECT count() FROM {db}.calls")
    final = ch_client.command(f"SELECT count() FROM {db}.calls FINAL")
    assert (raw, final) == (22, 10)


def test_billing_per_app_with_60_6(ch_client: Any, db: str) -> None:
    assert export(ch_client, db, "billing") == (
        f"section,app_key,{BILLING_HEADER}\n"
        '"billed","A",4,182.500,246,2,6.000,5,2.417,2\n'
        '"billed","B",1,30.000,60,0,0.000,0,0.000,1\n'
        '"open","A",2,150.000,0,1,0.167,2,6.833,0\n'
    )


def test_billing_rounding_rule_changes_only_billable_seconds(ch_client: Any, db: str) -> None:
    lines = export(ch_client, db, "billing", rounding="1/1").splitlines()
    assert lines[1:3] == [
        '"billed","A",4,182.500,183,2,6.000,5,2.417,2',
        '"billed","B",1,30.000,30,0,0.000,0,0.000,1',
    ]
    lines = export(ch_client, db, "billing", rounding="60/60").splitlines()
    assert lines[1].split(",")[4] == "300"  # 120 + 0 + 60 + 120


def test_billing_by_caller_sip_login_and_custom_field(ch_client: Any, db: str) -> None:
    out = export(ch_client, db, "billing", group_by="caller,sip_login,custom.tenant")
    assert out == (
        f"section,caller,sip_login,custom.tenant,{BILLING_HEADER}\n"
        '"billed","","","",0,0.000,0,1,1.000,5,2.417,0\n'
        '"billed","","alice-sip","t1",0,0.000,0,1,5.000,0,0.000,0\n'
        '"billed","alice","alice-sip","t1",2,61.000,66,0,0.000,0,0.000,2\n'
        '"billed","bob","bob-sip","",1,120.000,120,0,0.000,0,0.000,0\n'
        '"billed","bob","bob-sip","7",1,1.500,60,0,0.000,0,0.000,0\n'
        '"billed","dave","dave-sip","",1,30.000,60,0,0.000,0,0.000,1\n'
        '"open","","","",0,0.000,0,1,0.167,2,6.833,0\n'
        '"open","carol","","",2,150.000,0,0,0.000,0,0.000,0\n'
    )


def test_consecutive_periods_bill_every_call_once(ch_client: Any, db: str) -> None:
    """Splitting the period at 22:14:30 splits the billed calls; none counted twice."""
    mid = FROM + 30_000
    first = export(ch_client, db, "billing", FROM, mid, fmt="jsonl")
    second = export(ch_client, db, "billing", mid, TO, fmt="jsonl")
    billed = [orjson.loads(line) for line in (first + second).splitlines() if '"billed"' in line]
    calls = {(row["app_key"], row["answered_calls"], row["billable_seconds"]) for row in billed}
    # [from, 30 s): c2 0 s, c3 60, c8 60 (B); [30 s, to): c5 120, c1 66 (c5 ends at 30 s),
    # and B's message m5 (no calls)
    assert calls == {("A", 2, 60), ("B", 1, 60), ("A", 2, 186), ("B", 0, 0)}


def test_billing_jsonl_and_parquet_carry_the_same_rows(
    ch_client: Any, db: str, tmp_path: Path
) -> None:
    jsonl = export(ch_client, db, "billing", fmt="jsonl").splitlines()
    assert orjson.loads(jsonl[0]) == {
        "section": "billed",
        "app_key": "A",
        "answered_calls": 4,
        "talk_seconds": 182.5,
        "billable_seconds": 246,
        "publish_streams": 2,
        "publish_minutes": 6.0,
        "viewer_streams": 5,
        "viewer_minutes": 2.417,
        "messages_sent": 2,
    }
    assert jsonl[0].startswith('{"section":"billed","app_key":"A","answered_calls":4,')
    spec = make_spec("billing", str(FROM), str(TO), fmt="parquet")
    parquet = b"".join(export_chunks(ch_client, db, spec))
    assert parquet[:4] == parquet[-4:] == b"PAR1"
    path = tmp_path / "billing.parquet"
    path.write_bytes(parquet)
    back = ch_client.query(
        f"SELECT section, app_key, billable_seconds, toString(viewer_minutes) "
        f"FROM file('{path}', Parquet)"
    ).result_rows
    assert [tuple(r) for r in back] == [
        ("billed", "A", 246, "2.417"),
        ("billed", "B", 60, "0"),
        ("open", "A", 0, "6.833"),
    ]
    assert b"".join(export_chunks(ch_client, db, spec)) == parquet  # byte-identical re-run


def test_cdr_lines_by_hand(ch_client: Any, db: str) -> None:
    assert export(ch_client, db, "cdr", FROM, FROM + 22_000) == (
        "call_id,node_id,app_key,session_id,caller,callee,incoming,has_video,media_provider,"
        "created_at,ringing_at,answered_at,ended_at,status,disposition,pdd_ms,duration_ms,"
        "talk_ms,hold_ms,sip_status,info,closed_by,custom,billable_seconds\n"
        '"c8","n1","B","s-dave","dave","",false,false,"","2023-11-14 22:13:20.000",,'
        '"2023-11-14 22:13:30.000","2023-11-14 22:14:00.000","FINISH","ANSWERED",,40000,30000,'
        '0,,"","event","",60\n'
        '"c2","n1","A","s-alice","alice","",false,false,"","2023-11-14 22:14:08.000",,'
        '"2023-11-14 22:14:10.000","2023-11-14 22:14:10.000","FINISH","ANSWERED",,2000,0,0,,'
        '"","event","{""tenant"":""t1""}",0\n'
        '"c3","n1","A","s-bob","bob","",false,false,"","2023-11-14 22:14:18.000",'
        '"2023-11-14 22:14:19.000","2023-11-14 22:14:20.000","2023-11-14 22:14:21.500",'
        '"FINISH","ANSWERED",1000,3500,1500,0,,"Normal call clearing","event",'
        '"{""tenant"":7}",60\n'
    )


def test_cdr_has_every_finished_call_of_the_period_once(ch_client: Any, db: str) -> None:
    rows = [orjson.loads(line) for line in export(ch_client, db, "cdr", fmt="jsonl").splitlines()]
    assert [r["call_id"] for r in rows] == ["c8", "c2", "c3", "c4", "c5", "c1"]
    assert [r["billable_seconds"] for r in rows] == [60, 0, 60, 0, 120, 66]
    assert rows[3]["disposition"] == "BUSY"
    assert rows[5]["ended_at"] == "2023-11-14 22:15:06.000"


def test_sdr_lines_by_hand(ch_client: Any, db: str) -> None:
    assert export(ch_client, db, "sdr") == (
        "2023-11-14 22:13:40;WebRTC;cam;v5;00:00:20;STOPPED;;SUBSCRIBE;0;\n"
        "2023-11-14 22:14:00;WebRTC;cam;p1;00:05:00;UNPUBLISHED;;PUBLISH;2;\n"
        "2023-11-14 22:14:10;WebRTC;cam;v1;00:01:00;STOPPED;;SUBSCRIBE;0;\n"
        "2023-11-14 22:14:39;WebRTC;cam;v6;00:00:00;FAILED;Stream not found;SUBSCRIBE;0;\n"
        "2023-11-14 22:14:50;WebRTC;cam;v4;00:00:10;STOPPED;;SUBSCRIBE;0;\n"
        "2023-11-14 22:15:40;WebRTC;live;p2;00:01:00;FAILED;closed by timeout;PUBLISH;1;\n"
        "2023-11-14 22:16:30;WebRTC;live;v7;00:00:05;STOPPED;;SUBSCRIBE;0;\n"
        "2023-11-14 22:19:00;WebRTC;cam;v3;00:00:50;STOPPED;;SUBSCRIBE;0;\n"
    )


def test_empty_period_gives_only_the_header(ch_client: Any, db: str) -> None:
    later = TO + 86_400_000
    assert export(ch_client, db, "cdr", later, later + 1000).count("\n") == 1
    assert export(ch_client, db, "sdr", later, later + 1000) == ""


@pytest.mark.parametrize("rule", ["1/1", "6/6", "30/6", "60/6", "60/60", "7/3"])
def test_sql_rounding_matches_the_python_rule(ch_client: Any, rule: str) -> None:
    rounding = parse_rounding(rule)
    talks = [0, 1, 999, 1000, 1001, 5999, 6000, 6001, 29_999, 30_000, 30_001, 59_999, 60_000,
             60_001, 61_000, 66_000, 66_001, 119_999, 3_600_000, 3_600_001, -1]  # fmt: skip
    values = ", ".join(f"toInt64({t})" for t in talks)
    sql = f"SELECT arrayMap(x -> {billable_sql('x', rounding)}, [{values}])"
    assert list(ch_client.query(sql).result_rows[0][0]) == [
        billable_seconds(t, rounding) for t in talks
    ]


def test_http_api_streams_the_same_bytes_and_refuses_bad_input(
    ch_client: Any, db: str, chdb_dsn: str
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from wcs_analytics.api import ReadAccess, exports

    access = ReadAccess(chdb_dsn, db)
    app = FastAPI()
    app.include_router(exports.create_router(access))
    try:
        with TestClient(app) as http:
            ok = http.get("/api/export/sdr", params={"from": str(FROM), "to": str(TO)})
            assert ok.status_code == 200
            assert ok.headers["content-type"].startswith("text/plain")
            assert ok.text == export(ch_client, db, "sdr")
            params = {"from": "2023-11-14T22:14:00Z", "to": "2023-11-14T22:24:00Z"}
            csv = http.get("/api/export/billing", params=params | {"group_by": "app_key"})
            assert csv.text == export(ch_client, db, "billing")
            assert 'filename="billing-' in csv.headers["content-disposition"]
            empty = http.get("/api/export/cdr", params={"from": "1", "to": "2"})
            assert empty.text.count("\n") == 1
            bad = http.get("/api/export/billing", params=params | {"rounding": "60"})
            assert bad.status_code == 400
            assert "A/B" in bad.json()["error"]
            assert http.get("/api/export/mdr", params=params).status_code == 422  # enum in spec
            for start, end, reason in (
                ("99999999999999999", "99999999999999999999", "out of range"),
                ("1969-12-31T23:00:00Z", "2023-11-14", "out of range"),
                ("2023-11-14", "9999-01-01", "out of range"),
                ("2020-01-01", "2023-01-01", "longer than 400 days"),
                ("2023-11-14", "2023-11-14", "empty"),
            ):
                refused = http.get("/api/export/cdr", params={"from": start, "to": end})
                assert refused.status_code == 400, (start, end)
                assert reason in refused.json()["error"]
    finally:
        access.close()
