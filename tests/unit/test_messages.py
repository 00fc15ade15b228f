"""messages: direction, first times, final_status ranking, rate marks, idle close."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from helpers.envs import CFG, assert_versions_increase, fold, last, messages, of, unversioned

from processors import messages as mod

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
        {"direction": "", "sent_at": 1000, "final_status": "SENT"},
        {"sent"},
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
    state, rows = fold(mod.step, events)
    row = last(rows, "messages")
    assert {k: row[k] for k in expected} == expected
    assert unversioned(row) == mod.render(state)
    assert state.marks == marks
    assert_versions_increase(of(rows, "messages"))


def test_idle_close_emits_nothing_and_schedules_eviction() -> None:
    state, _ = fold(mod.step, OUTGOING)
    due = 3000 + CFG.message_idle_timeout_ms
    assert mod.deadline(state, CFG) == due
    assert mod.expire(state, due - 1, CFG) == (state, [])
    closed, rows = mod.expire(state, due, CFG)
    assert rows == [] and closed.core.timed_out_at == due
    assert mod.deadline(closed, CFG) is None


def test_late_event_after_close_still_updates_the_row() -> None:
    state, _ = fold(mod.step, OUTGOING[:3])
    closed, _ = mod.expire(state, 1500 + CFG.message_idle_timeout_ms, CFG)
    _, rows = mod.step(closed, OUTGOING[3], CFG)
    assert last(rows, "messages")["final_status"] == "IMDN_DELIVERED"


def test_state_round_trips_through_json() -> None:
    state, _ = fold(mod.step, OUTGOING)
    assert mod.MessageState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state
