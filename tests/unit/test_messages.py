"""messages: direction, first times, final_status ranking, rate marks, idle close."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.envs import (
    CFG,
    HOUR,
    assert_versions_increase,
    expire,
    fold,
    last,
    messages,
    of,
    step,
    unversioned,
)

from processors import messages as mod

STEP, EXPIRE = step(mod), expire(mod)

E = messages(**{"from": "sip:alice@x", "to": "sip:bob@x"})
MSE = "MessageStatusEvent"
OUTGOING = [
    E("sendMessage", 1000, contentType="text/plain", isImdnRequired=True),
    E(MSE, 1100, "SENT"),
    E(MSE, 1500, "ACCEPTED"),
    E(MSE, 3000, "IMDN_DELIVERED"),
]
OUTGOING_ROW = {
    "message_id": "msg-1",
    "direction": "outgoing",
    "sender": "sip:alice@x",
    "recipient": "sip:bob@x",
    "content_type": "text/plain",
    "imdn_required": True,
    "created_at": 1000,
    "sent_at": 1000,
    "received_at": None,
    "accepted_at": 1500,
    "delivered_at": 3000,
    "failed_at": None,
    "last_event_at": 3000,
    "final_status": "IMDN_DELIVERED",
}

CASES: list[tuple[str, list[Any], dict[str, Any], set[str]]] = [
    (
        "outgoing delivered",
        OUTGOING,
        OUTGOING_ROW,
        {"sent", "accepted", "imdn_delivered"},
    ),
    (
        "reordered with duplicates",
        [OUTGOING[3], OUTGOING[3], OUTGOING[1], OUTGOING[0], OUTGOING[2], OUTGOING[0]],
        OUTGOING_ROW,
        {"sent", "accepted", "imdn_delivered"},
    ),
    (
        "failed",
        [E("sendMessage", 1000), E(MSE, 1200, "FAILED", info="SIP 403 FORBIDDEN")],
        {"failed_at": 1200, "final_status": "FAILED", "info": "SIP 403 FORBIDDEN"},
        {"sent", "failed"},
    ),
    (
        "delivered outranks failed",
        [E(MSE, 1000, "IMDN_DELIVERED"), E(MSE, 2000, "FAILED")],
        {"final_status": "IMDN_DELIVERED", "direction": "", "sent_at": None},
        {"failed", "imdn_delivered"},
    ),
    (
        "incoming",
        [E("OnMessageEvent", 1000)],
        {"direction": "incoming", "received_at": 1000, "final_status": "RECEIVED"},
        {"received"},
    ),
    (
        "status SENT without sendMessage",
        [E(MSE, 1000, "SENT")],
        {"direction": "outgoing", "sent_at": 1000, "final_status": "SENT"},
        {"sent"},
    ),
    (
        "accepted without sendMessage: dated by the answer",
        [E(MSE, 1500, "ACCEPTED")],
        {"direction": "outgoing", "sent_at": 1500, "accepted_at": 1500, "final_status": "ACCEPTED"},
        {"sent", "accepted"},
    ),
    (
        "accepted with a sendMessage arriving later: sent at sendMessage",
        [E(MSE, 1500, "ACCEPTED"), E("sendMessage", 1000)],
        {"direction": "outgoing", "sent_at": 1000, "accepted_at": 1500, "created_at": 1000},
        {"sent", "accepted"},
    ),
    (
        "received status without OnMessageEvent",
        [E(MSE, 1000, "RECEIVED")],
        {"direction": "incoming", "received_at": 1000, "sent_at": None},
        {"received"},
    ),
    (
        "imdn forbidden",
        [E("sendMessage", 1000), E(MSE, 1500, "ACCEPTED"), E(MSE, 2000, "IMDN_FORBIDDEN")],
        {"final_status": "IMDN_FORBIDDEN", "failed_at": None},
        {"sent", "accepted", "imdn_failed"},
    ),
    (
        "unknown status only when nothing ranked",
        [E(MSE, 1000, "WEIRD")],
        {"final_status": "WEIRD"},
        set(),
    ),
    (
        "sendIMDN joins the message by messageId",
        [E("sendMessage", 1000), E("sendIMDN", 2000, "IMDN_DELIVERED", id=None, messageId="msg-1")],
        {"delivered_at": 2000, "final_status": "IMDN_DELIVERED"},
        {"sent", "imdn_delivered"},
    ),
]


@pytest.mark.parametrize(
    ("events", "expected", "marks"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_message_row(events: list[Any], expected: dict[str, Any], marks: set[str]) -> None:
    assert {e["key"] for e in events} == {"msg-1"}
    state, rows = fold(STEP, events)
    row = last(rows, "messages")
    assert {k: row[k] for k in expected} == expected
    assert unversioned(row) == mod.render(state)
    assert row["version"] == state.version
    assert mod.marks(state) == marks
    assert_versions_increase(of(rows, "messages"))


def test_idle_close_emits_nothing_and_schedules_eviction() -> None:
    state, _ = fold(STEP, OUTGOING)
    due = 3000 + CFG.message_idle_timeout_ms
    assert mod.deadline(state, CFG) == due
    assert EXPIRE(state, due - 1, CFG) == []
    version = state.version
    assert mod.expire(state, due, CFG)
    assert state.timed_out_at == due and state.version == version  # closing changes no column
    assert mod.deadline(state, CFG) is None


def test_late_imdn_hours_after_the_idle_close_still_updates_the_row() -> None:
    state, rows = fold(STEP, OUTGOING[:3])
    assert EXPIRE(state, 1500 + CFG.message_idle_timeout_ms, CFG) == []
    late = 1500 + 5 * HOUR
    _, more = STEP(state, E(MSE, late, "IMDN_DELIVERED"), CFG)
    row = last(more, "messages")
    assert (row["final_status"], row["delivered_at"]) == ("IMDN_DELIVERED", late)
    assert row["version"] > last(rows, "messages")["version"]
    assert "imdn_delivered" in mod.marks(state)
