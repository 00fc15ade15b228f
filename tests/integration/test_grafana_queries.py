"""deploy/grafana: every panel's, variable's and annotation's SQL runs on the real schema (chDB).

Grafana macros are replaced by concrete SQL the way the ClickHouse plugin expands them
($__timeFilter(c) -> c >= from AND c <= to, $__timeInterval(c) -> toStartOfInterval);
variables take their 'All' value and a concrete app/node.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events.tables import Row
from sinks.writer import ClickHouseWriter
from tests.integration.dashboard_data import M0, MIN, fill
from tests.integration.kpi_rows import row

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).parents[2] / "deploy/grafana/dashboards/wcs-analytics.json"
ENTITY_TABLES = (
    r"(calls|streams|messages|keepalive_gaps|status_counts|connections|message_rates|alerts)"
)
ALERTS_ANNOTATION = "FAILED-spike alerts"


def expand(sql: str, database: str, app: str = "__all", node: str = "__all") -> str:
    start, end = f"toDateTime({M0 // 1000}, 'UTC')", f"toDateTime({(M0 + 10 * MIN) // 1000}, 'UTC')"
    sql = re.sub(r"\$__timeFilter\(([\w.]+)\)", rf"\1 >= {start} AND \1 <= {end}", sql)
    sql = re.sub(r"\$__timeInterval\(([\w.]+)\)", r"toStartOfInterval(\1, INTERVAL 60 second)", sql)
    sql = sql.replace("$__fromTime", start).replace("$__toTime", end)
    sql = sql.replace("${app_key:sqlstring}", f"'{app}'").replace("${node:sqlstring}", f"'{node}'")
    assert "$" not in sql, f"unexpanded macro or variable in {sql}"
    return re.sub(r"\bwcs\.", f"{database}.", sql)


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p["targets"]]
    found += [(v["name"], v["query"]) for v in dashboard["templating"]["list"]]
    found += [(a["name"], a["target"]["rawSql"]) for a in annotation_list() if "target" in a]
    return found


def annotation_list() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["annotations"]["list"]
    return entries


@pytest.fixture
def db(ch_client: Any, fresh_db: str) -> str:
    fill(ch_client, fresh_db)
    return fresh_db


def test_the_dashboard_has_the_panels_of_the_built_in_one() -> None:
    titles = {title for title, _ in queries()}
    for needed in (
        "Calls by disposition",
        "ASR / NER",
        "Post-dial delay",
        "Concurrency",
        "Streams and viewers",
        "Keep-alive gaps",
        "Message delivery",
        "FAILED statuses by family",
        "Top failure reasons",
    ):
        assert needed in titles


@pytest.mark.parametrize(("title", "sql"), queries(), ids=[t for t, _ in queries()])
def test_every_query_runs_on_the_schema(ch_client: Any, db: str, title: str, sql: str) -> None:
    for app, node in (("__all", "__all"), ("A", "n1"), ("nope", "__all")):
        ch_client.query(expand(sql, db, app, node))
    # entity tables are read with FINAL (re-emitted versions count once); DISTINCT needs none
    for match in re.finditer(rf"FROM wcs\.{ENTITY_TABLES}\b(\s+FINAL)?", sql):
        assert match.group(2) or "SELECT DISTINCT" in sql, (
            f"{title}: {match.group(0)} without FINAL"
        )


def result(client: Any, sql: str, database: str, **scope: str) -> list[dict[str, Any]]:
    return list(client.query(expand(sql, database, **scope)).named_results())


def test_panels_show_the_hand_computed_values(ch_client: Any, db: str) -> None:
    sql = dict(queries())
    calls = result(ch_client, sql["Calls by disposition"], db)
    assert [(r["answered"], r["busy"], r["failed"], r["no_answer"]) for r in calls] == [
        (1, 1, 2, 0),
        (0, 0, 0, 1),
    ]
    assert result(ch_client, sql["Call attempts"], db, app="A")[0]["attempts"] == 4
    assert result(ch_client, sql["ASR"], db, app="A", node="n1")[0]["asr"] == 0.25
    assert result(ch_client, sql["ACD"], db)[0]["acd_s"] == 60.0
    assert result(ch_client, sql["Peak concurrent calls"], db, app="A")[0]["peak"] == 2
    failed = result(ch_client, sql["FAILED statuses by family"], db, app="B")
    assert [(r["call"], r["stream"]) for r in failed] == [(1, 0)]
    reasons = result(ch_client, sql["Top failure reasons"], db)
    assert (reasons[0]["info"], reasons[0]["sip_status"], reasons[0]["calls"]) == (
        "SIP 503",
        503,
        2,
    )
    assert result(ch_client, sql["Message delivery rate"], db)[0]["delivery_rate"] == 0.5


def test_the_alert_annotation_is_a_clickhouse_sql_query_next_to_the_built_in_one() -> None:
    by_name = {a["name"]: a for a in annotation_list()}
    assert by_name["Annotations & Alerts"]["builtIn"] == 1
    alert = by_name[ALERTS_ANNOTATION]
    assert alert["enable"] is True
    assert alert["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": "wcs-clickhouse"}
    target = alert["target"]
    assert (target["editorType"], target["queryType"], target["format"]) == ("sql", "table", 1)


def alert(alert_id: str, version: int, **values: Any) -> Row:
    return row("alerts", alert_id=alert_id, version=version, **values)


CALL_SPIKE = {
    "rule": "call_failed_spike",
    "family": "call",
    "app_key": "A",
    "node_id": "*",
    "failures": 30,
    "attempts": 50,
    "ratio": 0.6,
    "baseline": 0.96875,
}
STREAM_SPIKE = {
    "rule": "stream_node_spike",
    "family": "stream",
    "app_key": "B",
    "node_id": "n2",
    "failures": 6,
    "attempts": 8,
    "ratio": 0.75,
    "baseline": 0.5,
}


def alert_rows(start: int) -> tuple[list[Row], ...]:
    """Two batches (inserted apart): final versions, then re-emitted older versions."""
    older_call = CALL_SPIKE | {"window_start": start - 30 * MIN, "fired_at": start - 29 * MIN}
    overlapping = CALL_SPIKE | {"window_start": start - 3 * MIN, "fired_at": start - 2 * MIN}
    firing = STREAM_SPIKE | {"window_start": start + 7 * MIN, "fired_at": start + 8 * MIN}
    later = STREAM_SPIKE | {"window_start": start + 14 * MIN, "fired_at": start + 15 * MIN}
    final = [
        # resolved before the range starts: hidden (its firing v1 must not resurface)
        alert("a3", 2, state="resolved", resolved_at=start - 20 * MIN, **older_call),
        # fired before the range, resolved inside it: a region across the range start
        alert("a1", 2, state="resolved", resolved_at=start + 4 * MIN, **overlapping),
        alert("a2", 1, state="firing", **firing),
        alert("a4", 1, state="firing", **later),  # fired after the range ends: hidden
    ]
    re_emitted = [
        alert("a3", 1, state="firing", **older_call),
        alert("a1", 1, state="firing", **overlapping),
    ]
    return final, re_emitted


def ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    return round(value.replace(tzinfo=value.tzinfo or UTC).timestamp() * 1000)


def test_the_alert_annotation_returns_one_hand_computed_event_per_alert(
    ch_client: Any, db: str
) -> None:
    for batch in alert_rows(M0):  # separate inserts: FINAL, not the insert, must dedup
        writer = ClickHouseWriter(ch_client, db, now_ms=lambda: M0)
        writer.add(batch)
        writer.flush()
    sql = dict(queries())[ALERTS_ANNOTATION]

    def events(**scope: str) -> list[tuple[int | None, int | None, str, str]]:
        rows = result(ch_client, sql, db, **scope)
        return [(ms(r["time"]), ms(r["timeEnd"]), r["text"], r["tags"]) for r in rows]

    stream = (
        M0 + 8 * MIN,
        None,
        "stream FAILED spike, app B, node n2: 6 of 8 failed (75%), baseline 0.5, "
        "rule stream_node_spike, firing",
        "stream,firing",
    )
    call = (
        M0 - 2 * MIN,
        M0 + 4 * MIN,
        "call FAILED spike, app A: 30 of 50 failed (60%), baseline 0.97, "
        "rule call_failed_spike, resolved",
        "call,resolved",
    )
    assert list(result(ch_client, sql, db)[0]) == ["time", "timeEnd", "text", "tags"]
    assert events() == [stream, call]
    assert events(app="A") == [call]
    # node_id '*' (a rule summed over nodes) concerns every node
    assert events(node="n2") == [stream, call]
    assert events(node="n1") == [call]
    assert events(app="B", node="n1") == []
