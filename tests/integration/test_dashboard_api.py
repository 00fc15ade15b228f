"""/api/kpi/... and /dashboard on the real engine (chDB) against hand-computed values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sinks.writer import ClickHouseWriter
from tests.integration.dashboard_data import M0, MIN, fill
from tests.integration.kpi_rows import row
from wcs_analytics.api import ReadAccess
from wcs_analytics.api.dashboard import create_router

pytestmark = pytest.mark.integration


@pytest.fixture
def api(ch_client: Any, fresh_db: str, chdb_dsn: str) -> Iterator[TestClient]:
    fill(ch_client, fresh_db)
    access = ReadAccess(chdb_dsn, fresh_db)
    app = FastAPI()
    app.include_router(create_router(access))
    with TestClient(app) as client:
        yield client
    access.close()


def get(api: TestClient, path: str, **params: Any) -> Any:
    answer = api.get(f"/api/kpi/{path}", params={"from": M0, "to": M0 + 5 * MIN, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_calls_by_disposition_and_filters(api):
    rows = get(api, "calls")["rows"]
    assert [(r["t"], r["answered"], r["busy"], r["failed"], r["no_answer"]) for r in rows] == [
        (M0, 1, 1, 2, 0),
        (M0 + MIN, 0, 0, 0, 1),
    ]
    only_b = get(api, "calls", app_key="B")["rows"]
    assert [(r["attempts"], r["failed"]) for r in only_b] == [(1, 1)]
    assert get(api, "calls", node="n2", app_key="A")["rows"] == []


def test_summary_recomputes_ratios_and_averages(api):
    summary = get(api, "summary", app_key="A")["summary"]
    assert summary["attempts"] == 4
    assert summary["asr"] == 0.25
    assert summary["ner"] == 0.75  # answered + busy + no_answer
    assert summary["acd_ms"] == 60_000
    assert summary["pdd_avg_ms"] == (2000 + 4000 + 1000) / 3
    empty = get(api, "summary", app_key="nobody")["summary"]
    assert empty["attempts"] == 0 and empty["asr"] is None  # 0/0 is null, not NaN


def test_concurrency_uses_the_roll_up_scope(api):
    rows = get(api, "concurrency")["rows"]
    first = rows[0]
    # c1 [10, 75) overlaps c2 [20, 30) and c3 [40, 41); c5 (B) [5, 6) overlaps none
    assert (first["t"], first["calls"], first["publishers"], first["viewers"]) == (M0, 2, 1, 1)
    assert get(api, "concurrency", app_key="B")["rows"][0]["calls"] == 1


def test_streams_messages_gaps_failed_reasons(api):
    streams = get(api, "streams")["rows"][0]
    assert (streams["publishers"], streams["viewers"], streams["startup_failures"]) == (1, 2, 1)
    messages = get(api, "messages")["rows"][0]
    assert (messages["sent"], messages["accepted"], messages["delivery_rate"]) == (2, 1, 0.5)
    keepalive = get(api, "keepalive")
    assert keepalive["rows"][0]["gaps"] == 1 and keepalive["streams"][0]["gap_max_ms"] == 20_000
    failed = get(api, "failed")["rows"]
    assert [(r["call"], r["stream"], r["message"]) for r in failed] == [(2, 1, 1)]
    reasons = get(api, "reasons")["rows"]
    assert (reasons[0]["source"], reasons[0]["info"], reasons[0]["calls"]) == ("call", "SIP 503", 2)
    assert {"source": "stream", "disposition": "FAILED"}.items() <= reasons[-1].items()


def test_alert_markers_from_the_migrated_alerts_table(api, ch_client, fresh_db):
    alert = {"alert_id": "a1", "rule": "default", "family": "call", "app_key": "A", "node_id": ""}
    alert |= {"window_start": M0, "failures": 2, "attempts": 4, "ratio": 0.5, "baseline": 0.0}
    writer = ClickHouseWriter(ch_client, fresh_db, now_ms=lambda: M0)
    writer.add([row("alerts", **alert, state="firing", fired_at=M0 + MIN, version=1)])
    writer.add(
        [
            row(
                "alerts",
                **alert,
                state="resolved",
                fired_at=M0 + MIN,
                version=2,
                resolved_at=M0 + 3 * MIN,
            )
        ]
    )
    writer.flush()
    markers = get(api, "alerts", app_key="A")["rows"]
    assert markers == [
        {
            "t": M0 + MIN,
            "end_t": M0 + 3 * MIN,
            "family": "call",
            "app_key": "A",
            "node_id": "",
            "state": "resolved",
            "rule": "default",
        }
    ]
    assert get(api, "alerts", app_key="B")["rows"] == []


def test_alert_markers_only_when_an_alerts_table_exists(api, ch_client, fresh_db):
    ch_client.command(f"DROP TABLE IF EXISTS {fresh_db}.alerts")
    assert get(api, "alerts")["rows"] == []
    ch_client.command(
        f"CREATE TABLE {fresh_db}.alerts (fired_at DateTime64(3, 'UTC'), family String, "
        "app_key String, node_id String, state String) ENGINE = MergeTree ORDER BY fired_at"
    )
    ch_client.command(
        f"INSERT INTO {fresh_db}.alerts VALUES "
        f"(fromUnixTimestamp64Milli({M0 + MIN}), 'call', 'A', '', 'firing'), "
        f"(fromUnixTimestamp64Milli({M0 + MIN}), 'call', 'B', '', 'firing')"
    )
    markers = get(api, "alerts", app_key="A")["rows"]
    assert [(m["t"], m["family"], m["app_key"]) for m in markers] == [(M0 + MIN, "call", "A")]


def test_bad_parameters_are_400_and_values_are_bound(api):
    assert api.get("/api/kpi/calls", params={"from": "yesterday"}).status_code == 400
    assert api.get("/api/kpi/calls", params={"from": M0, "to": M0}).status_code == 400
    assert api.get("/api/kpi/calls", params={"step": "90"}).status_code == 400
    for params in (
        {"from": "-1", "to": M0},
        {"from": M0, "to": "99999999999999999999"},
        {"from": "0001-01-01T00:00:00+01:00", "to": M0},
        {"from": "2026-01-01", "to": "2100-01-02"},
        {"to": "1000"},  # the default start (an hour before) is before 1970
    ):
        answer = api.get("/api/kpi/calls", params=params)
        assert answer.status_code == 400, params
        assert "out of range" in answer.json()["detail"], params
    too_long = api.get("/api/kpi/calls", params={"from": "2020-01-01", "to": "2023-01-01"})
    assert too_long.status_code == 400 and "400 days" in too_long.json()["detail"]
    injected = get(api, "calls", app_key="A' OR 1 = 1 --")
    assert injected["rows"] == []


def test_page_and_assets_are_served_locally(api):
    page = api.get("/dashboard")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("dashboard.css", "charts.js", "dashboard.js"):
        assert f"dashboard/static/{asset}" in page.text
        assert api.get(f"/dashboard/static/{asset}").status_code == 200
    assert "http" not in page.text.replace("http://www.w3.org", "")  # no CDN
    assert api.get("/dashboard/static/..%2Fdashboard.py").status_code == 404
