"""Rated exports (sinks/exports/rated.py) on the real engine, against costs computed by hand.

Same rows as test_exports.py (superseded versions, the final rows written twice, merges
stopped); period [22:14:00, 22:24:00) UTC. Deck: tests/integration/rating_decks.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from sinks.exports import export_chunks, make_spec
from sinks.exports.ledger import diff_totals
from sinks.exports.manifest import RatedRun
from sinks.exports.rated import correction_chunks, rated_chunks, run_rated
from sinks.migrations import migrate
from sinks.rating.load import parse_deck
from sinks.writer import ClickHouseWriter
from tests.integration.export_rows import FIRST, FROM, LATER, TO, talk
from tests.integration.kpi_rows import M0, at
from tests.integration.rating_decks import R1, R2, texts

pytestmark = pytest.mark.integration

DECK = parse_deck(texts(R1))


@pytest.fixture
def db(ch_client: Any, fresh_db: str) -> Iterator[str]:
    migrate(ch_client, fresh_db)
    for table in ("calls", "streams", "messages", "connections"):
        ch_client.command(f"SYSTEM STOP MERGES {fresh_db}.{table}")
    write(ch_client, fresh_db, FIRST, LATER, LATER)
    yield fresh_db


def write(client: Any, db: str, *batches: list[Any]) -> None:
    writer = ClickHouseWriter(client, db, now_ms=lambda: M0)
    for batch in batches:
        writer.add(batch)
        writer.flush()


def run(
    client: Any,
    db: str,
    kind: str = "billing",
    deck: Any = DECK,
    now: int = 0,
    start: int = FROM,
    end: int = TO,
) -> RatedRun:
    return run_rated(client, db, make_spec(kind, str(start), str(end)), deck, M0 + now)


def jsonl(client: Any, db: str, result: RatedRun, correction: bool = False) -> list[Any]:
    render = correction_chunks if correction else rated_chunks
    text = b"".join(render(client, db, result.record, "jsonl")).decode()
    return [orjson.loads(line) for line in text.splitlines()]


def test_rated_cdr_by_hand(ch_client: Any, db: str) -> None:
    result = run(ch_client, db, "cdr")
    rows = [
        (
            r["section"],
            r["call_id"],
            r["rate_id"],
            r["tiers"],
            r["billed_seconds"],
            r["connect_fee"],
            r["cost"],
            r["reason"],
        )
        for r in jsonl(ch_client, db, result)
    ]
    assert rows == [
        ("rated", "c8", "calls-b", "1/all=30", 30, 0, 0.6, ""),  # B: 30 s x 1.20/min
        ("rated", "c2", "calls", "", 0, 0.05, 0.05, ""),  # 0 s: the connect fee
        ("rated", "c3", "calls", "1/all=60", 60, 0.05, 0.65, ""),  # 1.5 s -> 60 s
        ("rated", "c4", "calls", "", 0, 0, 0, ""),  # busy: no attempt fee in this deck
        ("rated", "c5", "calls", "1/all=60 2/all=60", 120, 0.05, 1.25, ""),
        ("rated", "c1", "calls", "1/all=60 2/all=6", 66, 0.05, 0.71, ""),  # 61 s -> 66 s
        ("unrated", "c6", "", "", None, None, None, "open"),  # ends exactly at to
        ("unrated", "c7", "", "", None, None, None, "open"),
    ]
    assert result.record.status == "first" and result.record.rows == 8
    assert result.totals.cost == {"EUR": Decimal("3.26")}
    csv = b"".join(rated_chunks(ch_client, db, result.record, "csv")).decode().splitlines()
    assert csv[2] == (
        '"rated","c2",0,"n1","A","alice","","outgoing","ANSWERED","2023-11-14 22:14:08.000",'
        '"2023-11-14 22:14:10.000","2023-11-14 22:14:10.000",0,"r1","calls","","EUR","",0,'
        '0.00,0.05,0.05,""'
    )


def test_a_reused_call_id_is_a_session_of_its_own(ch_client: Any, db: str) -> None:
    # WCS reused the id c2 for a new call from 22:17:20 (incarnation = its first event)
    again = talk("c2", 1, 200, 210, 240, caller="alice", session="s-alice")
    write(ch_client, db, [("calls", again[1] | {"incarnation": at(200)})])
    result = run(ch_client, db, "cdr")
    calls = [
        (r["call_id"], r["incarnation"], r["talk_ms"], r["cost"])
        for r in jsonl(ch_client, db, result)
        if r["call_id"] == "c2"
    ]
    assert calls == [("c2", 0, 0, 0.05), ("c2", at(200), 30_000, 0.65)]  # 30 s -> 60 s
    assert result.totals.cost == {"EUR": Decimal("3.91")}  # 3.26 + 0.65


def test_rated_billing_counts_agree_with_the_plain_export(ch_client: Any, db: str) -> None:
    plain = b"".join(
        export_chunks(ch_client, db, make_spec("billing", str(FROM), str(TO), fmt="jsonl"))
    ).decode()
    plain_rows = {(r["section"], r["app_key"]): r for r in map(orjson.loads, plain.splitlines())}
    rated = {(r["section"], r["app_key"]): r for r in jsonl(ch_client, db, run(ch_client, db))}
    assert set(rated) == {("billed", "A"), ("billed", "B"), ("unrated", "A")}
    for (section, app), row in rated.items():
        before = plain_rows[("billed" if section == "billed" else "open", app)]
        for column in (
            "answered_calls",
            "talk_seconds",
            "publish_streams",
            "publish_minutes",
            "viewer_streams",
            "viewer_minutes",
            "messages_sent",
        ):
            assert row[column] == before[column], (section, app, column)
    a, b = rated[("billed", "A")], rated[("billed", "B")]
    # A, each session rounded to cents on its own:
    #   calls c2 0.05, c3 0.65, c4 0, c5 1.25, c1 0.71                        = 2.66
    #   publish at 0.01/min: p1 300 s 0.05, p2 60 s 0.01                       = 0.06
    #   viewers at 0.006/min: v1 60 s 0.006 -> 0.01, v3 50 s 0.005 -> 0.01 (half up),
    #   v4 10 s, v5 20 s, v7 5 s -> 0.00                                       = 0.02
    #   messages m1, m7 at 0.05                                                = 0.10
    assert (a["call_attempts"], a["billed_seconds"], a["fees"]) == (5, 246 + 360 + 145, 0.2)
    assert a["cost"] == 2.84
    assert b["cost"] == 0.65  # c8 30 s at 1.20/min, m5
    assert rated[("unrated", "A")]["reason"] == "open"


def test_sessions_no_rate_matches_are_unrated_with_the_reason(ch_client: Any, db: str) -> None:
    deck = parse_deck(
        texts(
            R1.replace(
                'id = "calls"\nproduct = "call"\n',
                'id = "calls"\nproduct = "call"\nprefix = "+49"\n',
            )
        )
    )
    rows = jsonl(ch_client, db, run(ch_client, db, "cdr", deck))
    unrated = {r["call_id"]: r["reason"] for r in rows if r["section"] == "unrated"}
    assert unrated["c3"] == "no call rate in r1: app_key 'A', direction 'outgoing', number ''"
    assert {r["call_id"] for r in rows if r["section"] == "rated"} == {"c8"}  # B's own rate
    assert all(r["cost"] is None for r in rows if r["section"] == "unrated")


def test_a_rerun_is_recognisably_the_same(ch_client: Any, db: str) -> None:
    first, again = run(ch_client, db), run(ch_client, db, now=1)
    assert (again.record.status, again.record.export_id) == ("same", first.record.export_id)
    stored = f"SELECT count() FROM {db}.export_lines WHERE export_id = '{first.record.export_id}'"
    assert ch_client.command(stored) == first.totals.sessions  # stored once
    runs = ch_client.query(f"SELECT status FROM {db}.export_runs ORDER BY created_at")
    assert [r[0] for r in runs.result_rows] == ["first", "same"]


def test_late_data_gives_a_correction_never_a_silent_rewrite(ch_client: Any, db: str) -> None:
    first = run(ch_client, db)
    # WCS's real end arrives after a timeout close: c3 talked 90 s, not 1.5 s; c5 really
    # ended after the period (it is open at `to` now)
    write(
        ch_client,
        db,
        [
            talk("c3", 9, 18, 20, 110, caller="bob", session="s-bob"),
            talk("c5", 9, -100, -90, 700, caller="bob", session="s-bob"),
        ],
    )
    second = run(ch_client, db, now=1)
    assert (second.record.status, second.record.corrects) == ("correction", first.record.export_id)
    rows = jsonl(ch_client, db, second, correction=True)
    assert [
        (
            r["session_key"],
            r["change"],
            r["old_section"],
            r["new_section"],
            r["old_billed_seconds"],
            r["new_billed_seconds"],
            r["old_cost"],
            r["new_cost"],
            r["cost_diff"],
        )
        for r in rows
    ] == [
        ("call:c3", "changed", "rated", "rated", 60, 90, 0.65, 0.95, 0.3),
        ("call:c5", "changed", "rated", "unrated", 120, 0, 1.25, 0, -1.25),
    ]
    # the SQL rendering is ledger.diff, and the corrections add up to new - old exactly
    python = [(c.session_key, c.currency, c.cost_diff) for c in second.corrections]
    assert python == [(r["session_key"], r["currency"], Decimal(str(r["cost_diff"]))) for r in rows]
    assert second.previous is not None
    expected = second.totals.cost["EUR"] - second.previous.cost["EUR"]
    assert diff_totals(second.corrections) == {"EUR": expected} == {"EUR": Decimal("-0.95")}
    # what the first run billed is still there, unchanged
    assert [r["cost"] for r in jsonl(ch_client, db, first) if r["section"] == "billed"] == [
        2.84,
        0.65,
    ]
    assert run(ch_client, db, now=2).record.status == "same"
    # a further change diffs against the corrected state, not the first run
    write(
        ch_client,
        db,
        [talk("c1", 9, 0, 5, 80, caller="alice", session="s-alice", custom='{"tenant":"t1"}')],
    )
    third = run(ch_client, db, now=3)
    assert third.record.corrects == second.record.export_id
    assert [(c.session_key, c.cost_diff) for c in third.corrections] == [
        ("call:c1", Decimal("0.12"))  # 75 s -> 78 s: 0.83 instead of 0.71
    ]


def test_rerating_with_a_new_revision_is_a_correction(ch_client: Any, db: str) -> None:
    first = run(ch_client, db, "cdr")
    second = run(ch_client, db, "cdr", parse_deck(texts(R1, R2)), now=1)
    assert second.record.status == "correction"
    assert second.record.deck_revisions == ("r1", "r2")
    changed = {c.session_key: (c.old, c.new, c.cost_diff) for c in second.corrections}
    # r2 from 22:14:15: c3 answered 22:14:20 is rated with it; c4 was never answered and
    # was created at 22:14:25: r2, still free. c1 (answered 22:14:05), c2 (22:14:10), c5
    # (22:12:30) and B's c8 keep r1.
    assert sorted(changed) == ["call:c3", "call:c4"]
    assert changed["call:c3"][2] == Decimal("-0.30")  # 60 s: 0.30 + 0.05 instead of 0.65
    new = changed["call:c3"][1]
    assert new is not None and new.deck_revision == "r2"
    assert diff_totals(second.corrections) == {
        "EUR": second.totals.cost["EUR"] - first.totals.cost["EUR"]
    }


def test_consecutive_periods_add_up_to_the_whole_range(ch_client: Any, db: str) -> None:
    whole = run(ch_client, db).totals
    for split in (10, 30, 301):  # c2/c3 sides, c5 ends exactly at 30 s, p1 at 300 s
        first = run(ch_client, db, end=FROM + split * 1000).totals
        second = run(ch_client, db, start=FROM + split * 1000).totals
        assert first.cost["EUR"] + second.cost["EUR"] == whole.cost["EUR"], split
        assert first.billed_seconds + second.billed_seconds == whole.billed_seconds, split
        rated = [t.sessions - t.unrated for t in (first, second, whole)]
        assert rated[0] + rated[1] == rated[2], split
