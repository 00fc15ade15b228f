"""The Kafka path's detector wrapper (processors.faust_alert_state): same verdicts as the pure
detector, restorable from its table at any record, outbox re-sent after a crash."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from events.tables import Row
from events.topics import alerts_topic
from processors import alerts
from processors.alert_rules import DEFAULT_RULES
from processors.embedded import EventClock
from processors.faust_alert_state import HEAD, AlertPartition, Table, pending_key
from processors.faust_alerts import alert_rows_topic_name

W = 60_000
T0 = 1_699_999_980_000
LATE = 60_000


def status_rows() -> list[dict[str, Any]]:
    """Eight quiet minutes (10 FINISH, 1 FAILED), a spike (40 FAILED of 50), quiet again;
    the spike minute's FAILED row is re-emitted with a higher version and count."""
    out = []
    for minute in range(16):
        ws = T0 + minute * W
        failed = {8: 38, 9: 35}.get(minute, 1 if minute < 8 else 0)
        for status, count in (("FINISH", 10), ("FAILED", failed)):
            if count:
                out.append({"window_start": ws, "family": "call", "status": status,
                            "app_key": "app", "node_id": "n1", "count": count,
                            "version": 1})  # fmt: skip
        if minute == 8:
            out.append(out[-1] | {"count": 40, "version": 2})  # re-emitted: the count replaced
    return out


def partition(table: Table, settle_ms: int, first: int = 0) -> tuple[AlertPartition, list[Row]]:
    return AlertPartition.load(table, DEFAULT_RULES, LATE, settle_ms, EventClock(False), first)


def pure(rows: list[dict[str, Any]], now: int) -> list[Row]:
    state = alerts.initialize()
    for row in rows:
        state = alerts.add(state, row)
    return alerts.evaluate(state, now, DEFAULT_RULES)[1]


def test_same_alerts_as_the_pure_detector_evaluated_at_the_end() -> None:
    rows, end = status_rows(), T0 + 16 * W
    want = pure(rows, end)
    assert [(r["state"], r["failures"]) for _, r in want] == [("firing", 40), ("resolved", 40)]
    for settle in (0, 3_600_000):  # evaluating while running or only at the end: same rows
        part, _ = partition({}, settle)
        got = [a for i, row in enumerate(rows) for a in part.add(row, i)]
        got += part.advance(end, len(rows))
        assert got == want, settle


def test_restart_from_the_table_at_every_record_continues_exactly() -> None:
    rows, end = status_rows(), T0 + 16 * W
    want = pure(rows, end)
    for cut in range(len(rows)):
        table: dict[bytes, bytes] = {}
        part, _ = partition(table, 0)
        got = [a for i, row in enumerate(rows[:cut]) for a in part.add(row, i)]
        part, resent = partition(table, 0, first=cut)  # a new worker adopts it
        got += [a for i, row in enumerate(rows[cut:], cut) for a in part.add(row, i)]
        got += part.advance(end, len(rows))
        assert got == want and resent == [], cut
        held = {pending_key(ws, k) for ws, keys in part.state.pending.items() for k in keys}
        assert set(table) == {HEAD} | held and min(part.state.pending) > T0 + 12 * W


def test_outbox_is_resent_from_the_first_uncommitted_record() -> None:
    table: dict[bytes, bytes] = {}
    part, _ = partition(table, 0)
    fired = [(i, a) for i, row in enumerate(status_rows()) for a in part.add(row, i)]
    (offset, firing), (resolved_at, resolved) = fired
    assert partition(dict(table), 0, first=offset)[1] == [firing, resolved]
    assert partition(dict(table), 0, first=offset + 1)[1] == [resolved]
    part.prune(resolved_at + 1)
    assert partition(dict(table), 0, first=0)[1] == []


def test_topics_script_creates_the_alert_topics() -> None:
    script = (Path(__file__).resolve().parents[2] / "deploy" / "topics.sh").read_text()
    listed = re.search(r'^ALERT_TOPICS="([^"]*)"', script, flags=re.MULTILINE)
    assert listed and listed.group(1).split() == [alert_rows_topic_name(""), alerts_topic("")]
