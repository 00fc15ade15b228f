"""A small hand-made database for the dashboard and Grafana query tests (times from M0)."""

from __future__ import annotations

from typing import Any

from events.tables import Row
from sinks.migrations import migrate
from sinks.writer import ClickHouseWriter
from tests.integration.kpi_rows import M0, at, call, gap, message, row, stream

MIN = 60_000

ROWS: list[Row] = [
    # A/n1, minute M0: answered (talk 60 s, pdd 2 s), busy, failed 503; minute M1: no answer
    call("c1", 1, at(10), ringing=at(12), disposition="IN_PROGRESS"),
    call("c1", 2, at(10), ringing=at(12), answered=at(15), ended=at(75), disposition="ANSWERED"),
    call("c2", 1, at(20), ringing=at(24), ended=at(30), disposition="BUSY", sip=486),
    call("c3", 1, at(40), ended=at(41), disposition="FAILED", sip=503, info="SIP 503"),
    call("c4", 1, at(70), ringing=at(71), ended=at(100), disposition="NO_ANSWER"),
    # B/n2, minute M0: one failed call
    call(
        "c5",
        1,
        at(5),
        app="B",
        node="n2",
        ended=at(6),
        disposition="FAILED",
        sip=503,
        info="SIP 503",
    ),
    stream("s1", 1, at(5), "publish", started=at(6), ended=at(126), final_status="UNPUBLISHED"),
    stream("s2", 1, at(20), "play", started=at(21), ended=at(51), final_status="STOPPED"),
    stream("s3", 1, at(55), "play", ended=at(57), final_status="FAILED"),
    gap("s1", 1, at(60), at(80)),
    message("m1", 1, at(1), "ACCEPTED", sent_at=at(1), accepted_at=at(2)),
    message("m2", 1, at(10), "FAILED", sent_at=at(10), failed_at=at(11)),
    *(
        row(
            "status_counts",
            window_start=M0,
            family=family,
            status="FAILED",
            app_key=app,
            node_id=node,
            count=n,
            version=1,
        )
        for family, app, node, n in (
            ("call", "A", "n1", 1),
            ("call", "B", "n2", 1),
            ("stream", "A", "n1", 1),
            ("message", "A", "n1", 1),
        )
    ),
]


def fill(client: Any, database: str) -> None:
    migrate(client, database)
    writer = ClickHouseWriter(client, database, now_ms=lambda: M0)
    writer.add(ROWS)
    writer.flush()


__all__ = ["M0", "MIN", "ROWS", "fill"]
