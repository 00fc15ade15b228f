"""calls: table-driven edges (duplicate, reorder, missing end, BUSY, hold, timeouts,
terminal-event fields)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from helpers.envs import (
    CFG,
    assert_versions_increase,
    calls,
    copy_state,
    expire,
    fold,
    last,
    of,
    step,
    unversioned,
)

from processors import calls as mod
from processors.state_codec import same

STEP, EXPIRE = step(mod), expire(mod)

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
    "sip_status": None,  # from the terminal event: FINISH carried none
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
    (
        "failed then a retried ring keeps the failure's sip and info",
        [
            E("CallStatusEvent", 1000, "RING", sipStatus=180),
            E("CallStatusEvent", 2000, "FAILED", sipStatus=480, info="Temporarily Unavailable"),
            E("CallStatusEvent", 2500, "RING", sipStatus=180, info="Ringing"),
        ],
        {"sip_status": 480, "info": "Temporarily Unavailable", "status": "FAILED"},
    ),
    (
        "busy then finish without sip keeps busy's sip and info",
        [
            E("CallStatusEvent", 1000, "RING", sipStatus=180),
            E("CallStatusEvent", 2000, "BUSY", sipStatus=486, info="Busy Here"),
            E("CallStatusEvent", 2100, "FINISH", info="Normal call clearing"),
        ],
        {"sip_status": 486, "info": "Busy Here", "disposition": "BUSY", "ended_at": 2100},
    ),
    (
        "finish without sip after a ring: no sip",
        [E("CallStatusEvent", 1000, "RING", sipStatus=180), E("CallStatusEvent", 2000, "FINISH")],
        {"sip_status": None, "info": "", "closed_by": "event"},
    ),
    (
        "open call: latest lifecycle sip by time",
        [
            E("CallStatusEvent", 1500, "SESSION_PROGRESS", sipStatus=183, info="progress"),
            E("CallStatusEvent", 1000, "RING", sipStatus=180, info="ringing"),
            E("TransferStatusEvent", 1600, "FAILED", sipStatus=503, info="transfer"),
        ],
        {"sip_status": 183, "info": "progress", "closed_by": ""},
    ),
    (
        "answer received after the end it precedes",
        [E("CallStatusEvent", 1000, "FINISH"), E("CallStatusEvent", 1003, "ESTABLISHED")],
        {"answered_at": 1000, "ended_at": 1000, "talk_ms": 0, "disposition": "ANSWERED"},
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_call_row(events: list[Any], expected: dict[str, Any]) -> None:
    state, rows = fold(STEP, events)
    row = last(rows, "calls")
    assert {k: row[k] for k in expected} == expected
    assert unversioned(row) == mod.render(state)
    assert row["version"] == state.version
    assert_versions_increase(of(rows, "calls"))
    assert state.statuses <= {"PENDING", "NEW", "TRYING", "RING", "SESSION_PROGRESS"} | {
        "ESTABLISHED",
        "HOLD",
        "BUSY",
        "FINISH",
        "FAILED",
    }


@pytest.mark.parametrize("index", range(len(ANSWERED)))
def test_duplicate_emits_nothing_and_changes_nothing(index: int) -> None:
    state, _ = fold(STEP, ANSWERED)
    before = copy_state(state)
    again, more = STEP(state, ANSWERED[index], CFG)
    assert more == []
    assert same(again, before)


def test_later_state_has_a_higher_version() -> None:
    """Every fold that changes the row raises the version, whatever the arrival order."""
    versions = []
    state = None
    for env in [ANSWERED[i] for i in (2, 0, 3, 1)]:
        state, rows = STEP(state, env, CFG)
        versions.append(last(rows, "calls")["version"])
    assert versions == sorted(set(versions))


def test_retry_with_later_time_emits_changed_row() -> None:
    state, rows = fold(STEP, ANSWERED[:3])
    retry = E("CallStatusEvent", 3500, "ESTABLISHED")
    state, more = STEP(state, retry, CFG)
    assert [r[1]["last_event_at"] for r in more] == [3500]
    assert more[0][1]["answered_at"] == 3000
    assert more[0][1]["version"] > last(rows, "calls")["version"]


def test_transfer_statuses_are_counted_but_separate() -> None:
    state, _ = fold(STEP, [E("TransferStatusEvent", 1000, "COMPLETED")])
    assert state.statuses == {"COMPLETED"}
    assert state.firsts == {}


@pytest.mark.parametrize(
    ("events", "first"),
    [
        ([E("CallStatusEvent", 1000, "RING")], "RING"),
        ([E("CallStatusEvent", 1000, "RING"), E("CallStatusEvent", 500, "RING")], None),
        ([E("TransferStatusEvent", 1000, "FAILED"), E("CallStatusEvent", 900, "FAILED")], None),
        ([E("hangup", 1000)], None),
    ],
    ids=["new status", "retried status", "side then lifecycle", "no status"],
)
def test_apply_returns_the_status_reached_first(events: list[Any], first: str | None) -> None:
    state = mod.CallState("call-1", events[0]["received_at"])
    reached = [mod.apply(state, env, CFG) for env in events]
    assert reached[-1] == first


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
    state, rows = fold(STEP, events)
    assert mod.deadline(state, CFG) == due
    assert EXPIRE(state, due - 1, CFG) == []
    assert state.timed_out_at is None
    out = EXPIRE(state, due, CFG)
    row = last(out, "calls")
    assert {k: row[k] for k in expected} == expected
    assert row["version"] > last(rows, "calls")["version"]
    assert mod.deadline(state, CFG) is None
    assert state.timed_out_at == due
    assert EXPIRE(state, due + IDLE, CFG) == []  # closes once


def test_late_terminal_event_recloses_by_event() -> None:
    state, _ = fold(STEP, [E("CallStatusEvent", 1000, "RING")])
    EXPIRE(state, 1000 + SETUP, CFG)
    state, rows = STEP(state, E("CallStatusEvent", 2000, "FINISH"), CFG)
    row = last(rows, "calls")
    assert (row["closed_by"], row["ended_at"], row["disposition"]) == ("event", 2000, "NO_ANSWER")


def test_real_end_hours_after_a_timeout_wins() -> None:
    """Idle timeout, then the FINISH 13 h later: the call ends when WCS says it did."""
    answered = E("CallStatusEvent", 1000, "ESTABLISHED", sipStatus=200)
    state, _ = fold(STEP, [E("call", 500, "NEW"), answered])
    timed_out = last(EXPIRE(state, 1000 + IDLE, CFG), "calls")
    assert (timed_out["closed_by"], timed_out["ended_at"]) == ("timeout", 1000)
    finish = 1000 + IDLE + 13 * 3_600_000
    state, rows = STEP(state, E("CallStatusEvent", finish, "FINISH", info="Normal"), CFG)
    row = last(rows, "calls")
    expected = {"closed_by": "event", "ended_at": finish, "talk_ms": finish - 1000,
                "duration_ms": finish - 500, "status": "FINISH", "info": "Normal"}  # fmt: skip
    assert {k: row[k] for k in expected} == expected
    assert row["version"] > timed_out["version"]


def test_event_after_timeout_moves_ended_at() -> None:
    state, _ = fold(STEP, [E("CallStatusEvent", 1000, "ESTABLISHED")])
    EXPIRE(state, 1000 + IDLE, CFG)
    state, rows = STEP(state, E("CallStatusEvent", 1500, "HOLD"), CFG)
    assert (last(rows, "calls")["ended_at"], last(rows, "calls")["closed_by"]) == (1500, "timeout")


def test_ended_call_has_no_deadline() -> None:
    state, _ = fold(STEP, [E("CallStatusEvent", 1000, "BUSY")])
    assert mod.deadline(state, CFG) is None
    assert EXPIRE(state, 10**15, CFG) == []


def test_hold_observations_are_bounded() -> None:
    events = [E("CallStatusEvent", t, "HOLD" if t % 2 else "ESTABLISHED") for t in range(300)]
    random.Random(7).shuffle(events)
    state, _ = fold(STEP, events)
    assert len(state.holds) == mod.HOLD_LIMIT
    assert state.holds[0] == (300 - mod.HOLD_LIMIT, "ESTABLISHED")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (180, 180),
        ("183", 183),
        (" 200", 200),
        ("-1", -1),
        (True, None),
        ("abc", None),
        (2**31, None),
        (-(2**31), -(2**31)),
        (200.0, None),
        (None, None),
    ],
)
def test_sip_status(value: Any, expected: int | None) -> None:
    assert mod.sip_status(value) == expected
