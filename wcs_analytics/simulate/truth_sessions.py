"""Ground truth rows for connections, messages and data operations (semantics: see ``truth``)."""

from __future__ import annotations

from typing import Any

from wcs_analytics.simulate.lifecycle import Lifecycle
from wcs_analytics.simulate.truth_media import CLOSED_BY_EVENT, scope

MESSAGE_RANK = ("RECEIVED", "ACCEPTED", "IMDN_DELIVERED", "FAILED")


def connection_row(lc: Lifecycle) -> dict[str, Any]:
    """``ended_at`` = first DISCONNECTED | FAILED; an open connection has ``final_status`` ''."""
    ended = lc.first("DISCONNECTED", "FAILED")
    final = next((s.status for s in lc.steps if s.status in ("DISCONNECTED", "FAILED")), "")
    created = min(s.at for s in lc.steps)
    return {
        **scope(lc),
        "sip_login": lc.steps[0].body.get("sipLogin", ""),
        "created_at": created,
        "established_at": lc.first("ESTABLISHED"),
        "registered_at": lc.first("REGISTERED"),
        "ended_at": ended,
        "final_status": final,
        "registration_status": "REGISTERED" if lc.first("REGISTERED") is not None else "",
        "closed_by": CLOSED_BY_EVENT if ended is not None else "",
    }


def message_row(lc: Lifecycle) -> dict[str, Any]:
    """``final_status``: the highest of RECEIVED < ACCEPTED < IMDN_DELIVERED < FAILED reached
    (arrival order may differ: a retried ACCEPTED can arrive after IMDN_DELIVERED)."""
    incoming = lc.steps[0].method == "OnMessageEvent"
    reached = {s.status for s in lc.steps} | ({"RECEIVED"} if incoming else set())
    body = lc.steps[0].body
    return {
        "message_id": lc.key,
        **scope(lc),
        "direction": "incoming" if incoming else "outgoing",
        "sender": body["from"],
        "recipient": body["to"],
        "imdn_required": body["isImdnRequired"],
        "created_at": min(s.at for s in lc.steps),
        "sent_at": lc.first_method("sendMessage"),
        "received_at": lc.first_method("OnMessageEvent"),
        "accepted_at": lc.first("ACCEPTED"),
        "delivered_at": lc.first("IMDN_DELIVERED"),
        "failed_at": lc.first("FAILED"),
        "final_status": max(reached & set(MESSAGE_RANK), key=MESSAGE_RANK.index),
    }


def data_row(lc: Lifecycle) -> dict[str, Any]:
    status = next(s for s in lc.steps if s.status)
    return {
        "operation_id": lc.key,
        **scope(lc),
        "created_at": min(s.at for s in lc.steps),
        "ended_at": status.at,
        "final_status": status.status,
    }
