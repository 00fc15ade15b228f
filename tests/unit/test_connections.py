"""connections: connect/established/ended, registration side events, idle close."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.envs import (
    CFG,
    HOUR,
    NODE,
    SESSION,
    assert_versions_increase,
    connections,
    expire,
    fold,
    last,
    of,
    step,
    unversioned,
)

from processors import connections as mod

STEP, EXPIRE = step(mod), expire(mod)

E = connections()
CSE = "ConnectionStatusEvent"
REG = "RegistrationStatusEvent"
CLIENT = {"clientVersion": "2.0.1", "clientOSVersion": "Linux", "clientBrowserVersion": "FF 120"}
NORMAL = [
    E("connect", 1000, sipLogin="1001", custom={"token": "x"}, **CLIENT),
    E(CSE, 1100, "ESTABLISHED"),
    E(CSE, 61_100, "DISCONNECTED", info="Normal disconnect"),
]
NORMAL_ROW = {
    "node_id": NODE,
    "session_id": SESSION,
    "app_key": "defaultApp",
    "sip_login": "1001",
    "client_version": "2.0.1",
    "client_os_version": "Linux",
    "client_browser_version": "FF 120",
    "created_at": 1000,
    "connected_at": 1000,
    "established_at": 1100,
    "ended_at": 61_100,
    "duration_ms": 60_000,
    "status": "DISCONNECTED",
    "final_status": "DISCONNECTED",
    "info": "Normal disconnect",
    "registration_status": "",
    "closed_by": "event",
    "custom": '{"token":"x"}',
}

CASES: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("normal", NORMAL, NORMAL_ROW),
    ("reordered with duplicates", [NORMAL[2], NORMAL[1], NORMAL[2], NORMAL[0]], NORMAL_ROW),
    (
        "failed before established: duration from connect",
        [E("connect", 1000), E(CSE, 1500, "FAILED", info="Session does not exist")],
        {"duration_ms": 500, "final_status": "FAILED", "established_at": None},
    ),
    (
        "no connect hook: duration from established",
        [E(CSE, 1100, "ESTABLISHED"), E(CSE, 900, "PENDING"), E(CSE, 2100, "FAILED")],
        {"connected_at": None, "duration_ms": 1000, "created_at": 900},
    ),
    (
        "only an end: duration zero",
        [E(CSE, 1000, "DISCONNECTED")],
        {"duration_ms": 0, "closed_by": "event"},
    ),
    (
        "missing end stays open",
        NORMAL[:2],
        {"ended_at": None, "duration_ms": None, "final_status": "", "closed_by": ""},
    ),
    (
        "registration is latest by time and never ends the session",
        [
            E(CSE, 1000, "ESTABLISHED"),
            E(REG, 3000, "FAILED", info="bad password"),
            E(REG, 2000, "REGISTERED"),
        ],
        {"registration_status": "FAILED", "status": "ESTABLISHED", "ended_at": None, "info": ""},
    ),
    (
        "retried established after the end",
        [E(CSE, 1000, "ESTABLISHED"), E(CSE, 2000, "DISCONNECTED"), E(CSE, 2200, "ESTABLISHED")],
        {"status": "DISCONNECTED", "ended_at": 2000, "last_event_at": 2200},
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_connection_row(events: list[Any], expected: dict[str, Any]) -> None:
    state, rows = fold(STEP, events)
    row = last(rows, "connections")
    assert {k: row[k] for k in expected} == expected
    assert unversioned(row) == mod.render(state)
    assert row["version"] == state.version
    assert_versions_increase(of(rows, "connections"))


def test_registration_statuses_count_for_the_connection() -> None:
    state, _ = fold(STEP, [E(CSE, 1000, "ESTABLISHED"), E(REG, 2000, "FAILED")])
    assert state.statuses == {"ESTABLISHED", "FAILED"}
    assert "FAILED" not in state.firsts


def test_idle_timeout() -> None:
    state, rows = fold(STEP, NORMAL[:2])
    due = 1100 + CFG.connection_idle_timeout_ms
    assert mod.deadline(state, CFG) == due
    assert EXPIRE(state, due - 1, CFG) == []
    out = EXPIRE(state, due, CFG)
    row = last(out, "connections")
    assert (row["closed_by"], row["ended_at"], row["duration_ms"]) == ("timeout", 1100, 0)
    assert row["version"] > last(rows, "connections")["version"]
    assert mod.deadline(state, CFG) is None


def test_disconnected_30_hours_later_wins_over_the_idle_timeout() -> None:
    state, _ = fold(STEP, NORMAL[:2])
    timed_out = last(EXPIRE(state, 1100 + CFG.connection_idle_timeout_ms, CFG), "connections")
    end = 1000 + 30 * HOUR
    _, rows = STEP(state, E(CSE, end, "DISCONNECTED", info="Normal disconnect"), CFG)
    row = last(rows, "connections")
    assert {k: row[k] for k in ("closed_by", "ended_at", "duration_ms", "final_status")} == {
        "closed_by": "event",
        "ended_at": end,
        "duration_ms": end - 1100,
        "final_status": "DISCONNECTED",
    }
    assert row["version"] > timed_out["version"]
