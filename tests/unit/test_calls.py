"""calls: table-driven edges (duplicate, reorder, missing end, BUSY, hold, timeouts)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import orjson
import pytest
from helpers.envs import CFG, assert_versions_increase, calls, fold, last, of, unversioned

from processors import calls as mod

E = calls(caller="alice", callee="bob")
ANSWERED = [
    E("OnCallEvent", 1000, "PENDING", incoming=True, hasVideo=False, mediaProvider="WebRTC"),
    E("CallStatusEvent", 1500, "RING", sipStatus=180),
    E("CallStatusEvent", 3000, "ESTABLISHED", sipStatus="200"),
    E("CallStatusEvent", 10_000, "FINISH", info="Normal call clearing"),
]
ANSWERED_ROW = {
    "call_id": "call-1",
    "caller": "alice",
    "callee": "bob",
    "incoming": True,
    "media_provider": "WebRTC",
    "created_at": 1000,
    "ringing_at": 1500,
    "answered_at": 3000,
    "ended_at": 10_000,
    "last_event_at": 10_000,
    "status": "FINISH",
    "disposition": "ANSWERED",
    "pdd_ms": 500,
    "duration_ms": 9000,
    "talk_ms": 7000,
    "hold_ms": 0,
    "sip_status": 200,
    "info": "Normal call clearing",
    "closed_by": "event",
}

CASES: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("answered", ANSWERED, ANSWERED_ROW),
    ("reordered", [ANSWERED[i] for i in (3, 1, 2, 0)], ANSWERED_ROW),
    ("duplicated", [e for e in ANSWERED for _ in (0, 1)], ANSWERED_ROW),
    (
        "missing end stays open",
        ANSWERED[:3],
        {"ended_at": None, "duration_ms": None, "talk_ms": None, "closed_by": ""},
    ),
    (
        "busy without finish ends at busy",
        [E("call", 1000, "TRYING"), E("CallStatusEvent", 2000, "BUSY", sipStatus=486)],
        {"ended_at": 2000, "disposition": "BUSY", "closed_by": "event", "talk_ms": 0},
    ),
    (
        "busy then finish ends at finish",
        [E("CallStatusEvent", 2500, "FINISH"), E("CallStatusEvent", 2000, "BUSY")],
        {"ended_at": 2500, "disposition": "BUSY", "status": "FINISH", "duration_ms": 500},
    ),
    (
        "failed keeps the terminal info",
        [
            E("CallStatusEvent", 1000, "TRYING", info="trying hard"),
            E("CallStatusEvent", 1200, "FAILED", info="SIP 403 FORBIDDEN", sipStatus=403),
        ],
        {"disposition": "FAILED", "ended_at": 1200, "info": "SIP 403 FORBIDDEN", "pdd_ms": None},
    ),
    (
        "rang but never answered",
        [E("CallStatusEvent", 1000, "SESSION_PROGRESS"), E("CallStatusEvent", 5000, "FINISH")],
        {"disposition": "NO_ANSWER", "talk_ms": 0, "pdd_ms": 0, "answered_at": None},
    ),
    (
        "zero length",
        [E("CallStatusEvent", 1000, "ESTABLISHED"), E("CallStatusEvent", 1000, "FINISH")],
        {"duration_ms": 0, "talk_ms": 0, "ended_at": 1000, "status": "FINISH"},
    ),
    (
        "hold and unhold intervals",
        [
            E("CallStatusEvent", 1000, "ESTABLISHED"),
            E("CallStatusEvent", 2000, "HOLD"),
            E("CallStatusEvent", 5000, "ESTABLISHED"),
            E("CallStatusEvent", 7000, "HOLD"),
            E("CallStatusEvent", 9000, "FINISH"),
        ],
        {"hold_ms": 5000, "talk_ms": 8000},
    ),
    (
        "retried hold counts from the first",
        [
            E("CallStatusEvent", 3000, "HOLD"),
            E("CallStatusEvent", 1000, "ESTABLISHED"),
            E("CallStatusEvent", 2000, "HOLD"),
            E("CallStatusEvent", 5000, "ESTABLISHED"),
        ],
        {"hold_ms": 3000, "status": "ESTABLISHED"},
    ),
    (
        "hold still open at end counts until ended_at",
        [E("CallStatusEvent", 1000, "HOLD"), E("CallStatusEvent", 1500, "FAILED")],
        {"hold_ms": 500},
    ),
    (
        "retry after the end does not resurrect",
        [
            E("CallStatusEvent", 1000, "ESTABLISHED"),
            E("CallStatusEvent", 2000, "FINISH"),
            E("CallStatusEvent", 2500, "ESTABLISHED"),
        ],
        {"status": "FINISH", "ended_at": 2000, "last_event_at": 2500},
    ),
    (
        "transfer failure is not a call failure",
        [E("CallStatusEvent", 1000, "ESTABLISHED"), E("TransferStatusEvent", 1500, "FAILED")],
        {"disposition": "ANSWERED", "closed_by": "", "status": "ESTABLISHED", "info": ""},
    ),
    (
        "fields from the earliest event carrying them",
        [
            E("CallStatusEvent", 2000, "RING", caller="late", hasVideo=True),
            E("call", 1000, "NEW", caller="early", custom={"b": 1, "a": [2]}),
        ],
        {"caller": "early", "has_video": True, "custom": '{"a":[2],"b":1}'},
    ),
    (
        "non numeric sipStatus ignored",
        [E("CallStatusEvent", 1000, "RING", sipStatus=180), E("hangup", 2000, sipStatus="x")],
        {"sip_status": 180, "status": "RING", "last_event_at": 2000},
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_call_row(events: list[Any], expected: dict[str, Any]) -> None:
    state, rows = fold(mod.step, events)
    row = last(rows, "calls")
    assert {k: row[k] for k in expected} == expected
    assert unversioned(row) == mod.render(state)
    assert_versions_increase(of(rows, "calls"))
    assert state.statuses <= {"PENDING", "NEW", "TRYING", "RING", "SESSION_PROGRESS"} | {
        "ESTABLISHED",
        "HOLD",
        "BUSY",
        "FINISH",
        "FAILED",
    }


def test_duplicate_emits_nothing() -> None:
    state, _ = fold(mod.step, ANSWERED)
    again, more = mod.step(state, ANSWERED[2], CFG)
    assert more == [] and again == state


def test_retry_with_later_time_emits_changed_row() -> None:
    state, _ = fold(mod.step, ANSWERED[:3])
    retry = E("CallStatusEvent", 3500, "ESTABLISHED")
    state, rows = mod.step(state, retry, CFG)
    assert [r[1]["last_event_at"] for r in rows] == [3500]
    assert rows[0][1]["answered_at"] == 3000 and rows[0][1]["version"] == 4


def test_transfer_statuses_are_counted_but_separate() -> None:
    state, _ = fold(mod.step, [E("TransferStatusEvent", 1000, "COMPLETED")])
    assert state.statuses == {"COMPLETED"}
    assert state.core.firsts == {}


SETUP, IDLE = CFG.call_setup_timeout_ms, CFG.call_idle_timeout_ms
TIMEOUTS: list[tuple[str, list[Any], int, dict[str, Any]]] = [
    (
        "setup timeout while ringing",
        [E("CallStatusEvent", 1000, "RING"), E("CallStatusEvent", 4000, "RING")],
        1000 + SETUP,
        {"closed_by": "timeout", "ended_at": 4000, "disposition": "NO_ANSWER", "talk_ms": 0},
    ),
    (
        "idle timeout once answered",
        [E("CallStatusEvent", 1000, "ESTABLISHED"), E("CallStatusEvent", 2000, "HOLD")],
        2000 + IDLE,
        {"closed_by": "timeout", "ended_at": 2000, "disposition": "ANSWERED", "hold_ms": 0},
    ),
    (
        "failed-looking transfer does not stop the setup timeout",
        [E("CallStatusEvent", 1000, "TRYING"), E("TransferStatusEvent", 2000, "FAILED")],
        1000 + SETUP,
        {"closed_by": "timeout", "ended_at": 2000, "disposition": "NO_ANSWER"},
    ),
]


@pytest.mark.parametrize(
    ("events", "due", "expected"), [c[1:] for c in TIMEOUTS], ids=[c[0] for c in TIMEOUTS]
)
def test_timeout(events: list[Any], due: int, expected: dict[str, Any]) -> None:
    state, rows = fold(mod.step, events)
    assert mod.deadline(state, CFG) == due
    assert mod.expire(state, due - 1, CFG) == (state, [])
    closed, out = mod.expire(state, due, CFG)
    row = last(out, "calls")
    assert {k: row[k] for k in expected} == expected
    assert row["version"] == last(rows, "calls")["version"] + 1
    assert mod.deadline(closed, CFG) is None
    assert closed.core.timed_out_at == due


def test_late_terminal_event_recloses_by_event() -> None:
    state, _ = fold(mod.step, [E("CallStatusEvent", 1000, "RING")])
    state, _ = mod.expire(state, 1000 + SETUP, CFG)
    state, rows = mod.step(state, E("CallStatusEvent", 2000, "FINISH"), CFG)
    row = last(rows, "calls")
    assert (row["closed_by"], row["ended_at"], row["disposition"]) == ("event", 2000, "NO_ANSWER")


def test_event_after_timeout_moves_ended_at() -> None:
    state, _ = fold(mod.step, [E("CallStatusEvent", 1000, "ESTABLISHED")])
    state, _ = mod.expire(state, 1000 + IDLE, CFG)
    state, rows = mod.step(state, E("CallStatusEvent", 1500, "HOLD"), CFG)
    assert (last(rows, "calls")["ended_at"], last(rows, "calls")["closed_by"]) == (1500, "timeout")


def test_ended_call_has_no_deadline() -> None:
    state, _ = fold(mod.step, [E("CallStatusEvent", 1000, "BUSY")])
    assert mod.deadline(state, CFG) is None
    assert mod.expire(state, 10**15, CFG) == (state, [])


def test_hold_observations_are_bounded() -> None:
    events = [E("CallStatusEvent", t, "HOLD" if t % 2 else "ESTABLISHED") for t in range(300)]
    random.Random(7).shuffle(events)
    state, _ = fold(mod.step, events)
    assert len(state.holds) == mod.HOLD_LIMIT
    assert state.holds[0] == (300 - mod.HOLD_LIMIT, "ESTABLISHED")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (180, 180),
        ("183", 183),
        (" 200", 200),
        (True, None),
        ("abc", None),
        (2**31, None),
        (None, None),
    ],
)
def test_sip_status(value: Any, expected: int | None) -> None:
    assert mod.sip_status(value) == expected


def test_state_round_trips_through_json() -> None:
    state, _ = fold(mod.step, ANSWERED)
    state = replace(state, holds=((1, "HOLD"),))
    restored = mod.CallState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert restored == state
