"""SIP messages (family ``message``, key ``id`` / ``messageId``) -> table ``messages``.

Pure rules over a mutable ``MessageState``. Messages have no terminal status: they
close silently (the table has no ``closed_by``; closing changes no column, so no row)
after ``message_idle_timeout_ms`` without events; a late IMDN after that still updates
the row. See docs/processing.md#messages.
"""

from __future__ import annotations

from typing import Any, Final

from events.envelope import Envelope
from processors import entity as e
from processors import values as v
from processors.config import ProcessorConfig

TABLE: Final = "messages"
IMDN_FAILED: Final = ("IMDN_FAILED", "IMDN_ERROR", "IMDN_FORBIDDEN")
# WCS reports these only for a MESSAGE this side sent: ACCEPTED is the 200/202 answer to it
SENT_STATUSES: Final = ("SENT", "ACCEPTED")
# final_status = the reached status ranked highest here; unknown statuses rank lowest
RANK: Final = (
    "SENT",
    "RECEIVED",
    "IMDN_NOTIFICATION_SENT",
    "ACCEPTED",
    "IMDN_ERROR",
    "IMDN_FORBIDDEN",
    "IMDN_FAILED",
    "FAILED",
    "IMDN_DELIVERED",
)
MARKS: Final = ("sent", "received", "accepted", "failed", "imdn_delivered", "imdn_failed")

SPEC: Final = e.spec(
    {
        "sender": ("from", v.text),
        "recipient": ("to", v.text),
        "content_type": ("contentType", v.text),
        "imdn_required": ("isImdnRequired", v.flag),
    },
    methods=frozenset({"sendMessage", "OnMessageEvent"}),
)


class MessageState(e.Entity):
    __slots__ = ()


def apply(state: MessageState, env: Envelope, cfg: ProcessorConfig) -> str | None:
    """Fold one message event in place; returns the status it reached first (for counting)."""
    changed, new = e.observe(state, env, SPEC)
    state.changes += int(changed)
    return new


def marks(state: MessageState) -> frozenset[str]:
    """The ``message_rates`` counters this message has reached."""
    f, m = state.firsts, state.methods
    return frozenset(
        name
        for name, hit in (
            ("sent", "sendMessage" in m or "SENT" in f or "ACCEPTED" in f),
            ("received", "OnMessageEvent" in m or "RECEIVED" in f),
            ("accepted", "ACCEPTED" in f),
            ("failed", "FAILED" in f),
            ("imdn_delivered", "IMDN_DELIVERED" in f),
            ("imdn_failed", "IMDN_FAILED" in f or "IMDN_ERROR" in f or "IMDN_FORBIDDEN" in f),
        )
        if hit
    )


def deadline(state: MessageState, cfg: ProcessorConfig) -> int | None:
    if not e.is_open(state):
        return None
    return state.last_event_at + cfg.message_idle_timeout_ms


def expire(state: MessageState, now_ms: int, cfg: ProcessorConfig) -> bool:
    """Close (no row: nothing in the row changes) when idle at ``now_ms``."""
    return e.time_out(state, deadline(state, cfg), now_ms, changes_row=False)


def _min(*times: int | None) -> int | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def direction(state: MessageState) -> str:
    """``outgoing`` once sendMessage or a status only a sent MESSAGE gets (SENT, ACCEPTED)
    was seen, else ``incoming`` after OnMessageEvent or RECEIVED, else ''."""
    if "sendMessage" in state.methods or any(s in state.firsts for s in SENT_STATUSES):
        return "outgoing"
    if "OnMessageEvent" in state.methods or "RECEIVED" in state.firsts:
        return "incoming"
    return ""


def final_status(state: MessageState, sent: bool, received: bool) -> str:
    """Most significant status reached (``RANK``); sendMessage implies SENT and
    OnMessageEvent implies RECEIVED; unknown statuses only when nothing ranked is reached."""
    reached = (
        set(state.firsts) | ({"SENT"} if sent else set()) | ({"RECEIVED"} if received else set())
    )
    if not reached:
        return ""
    return max(reached, key=lambda s: (RANK.index(s) if s in RANK else -1, s))


def render(state: MessageState) -> dict[str, Any]:
    """The ``messages`` row without ``version``."""
    v = e.values(state)
    firsts = state.firsts
    sent_at = _min(state.methods.get("sendMessage"), e.at(firsts.get("SENT")))
    if sent_at is None:  # the sendMessage hook never arrived: the answer to it dates it
        sent_at = e.at(firsts.get("ACCEPTED"))
    received_at = _min(state.methods.get("OnMessageEvent"), e.at(firsts.get("RECEIVED")))
    failed = e.first(state, "FAILED")
    return {
        "message_id": state.key,
        "node_id": v.get("node_id", ""),
        "app_key": v.get("app_key", ""),
        "session_id": v.get("session_id", ""),
        "direction": direction(state),
        "sender": v.get("sender", ""),
        "recipient": v.get("recipient", ""),
        "content_type": v.get("content_type", ""),
        "imdn_required": v.get("imdn_required", False),
        "created_at": state.created_at,
        "sent_at": sent_at,
        "received_at": received_at,
        "accepted_at": e.at(firsts.get("ACCEPTED")),
        "delivered_at": e.at(firsts.get("IMDN_DELIVERED")),
        "failed_at": e.at(failed),
        "last_event_at": state.last_event_at,
        "final_status": final_status(
            state, "sendMessage" in state.methods, "OnMessageEvent" in state.methods
        ),
        "info": e.info_for(state, failed),
    }
