"""deploy/grafana: every panel's and variable's SQL runs on the real schema (chDB).

Grafana macros are replaced by concrete SQL the way the ClickHouse plugin expands them
($__timeFilter(c) -> c >= from AND c <= to, $__timeInterval(c) -> toStartOfInterval);
variables take their 'All' value and a concrete app/node.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dashboard_data import M0, MIN, fill

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).parents[2] / "deploy/grafana/dashboards/wcs-analytics.json"
ENTITY_TABLES = r"(calls|streams|messages|keepalive_gaps|status_counts|connections|message_rates)"


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
    return found


@pytest.fixture
def db(ch_client: Any, fresh_db: str) -> str:
    fill(ch_client, fresh_db)
    return fresh_db


def test_the_dashboard_has_the_panels_of_the_built_in_one():
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
def test_every_query_runs_on_the_schema(ch_client, db, title, sql):
    for app, node in (("__all", "__all"), ("A", "n1"), ("nope", "__all")):
        ch_client.query(expand(sql, db, app, node))
    # entity tables are read with FINAL (re-emitted versions count once); DISTINCT needs none
    for match in re.finditer(rf"FROM wcs\.{ENTITY_TABLES}\b(\s+FINAL)?", sql):
        assert match.group(2) or "SELECT DISTINCT" in sql, (
            f"{title}: {match.group(0)} without FINAL"
        )


def result(client: Any, sql: str, database: str, **scope: str) -> list[dict[str, Any]]:
    return list(client.query(expand(sql, database, **scope)).named_results())


def test_panels_show_the_hand_computed_values(ch_client, db):
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
