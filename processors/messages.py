"""SIP messages (family ``message``, key ``id`` / ``messageId``) -> table ``messages``.

Pure ``step``/``deadline``/``expire``. Messages have no terminal status: they close
(silently, the table has no ``closed_by``) after ``message_idle_timeout_ms`` without
events and are evicted ``closed_retention_ms`` later. See docs/processing.md#messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from events.envelope import Envelope
from events.tables import Row
from processors import core as c
from processors import values as v
from processors.config import ProcessorConfig

TABLE: Final = "messages"
IMDN_FAILED: Final = ("IMDN_FAILED", "IMDN_ERROR", "IMDN_FORBIDDEN")
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

SPEC: Final = c.Spec(
    fields={
        "sender": ("from", v.text),
        "recipient": ("to", v.text),
        "content_type": ("contentType", v.text),
        "imdn_required": ("isImdnRequired", v.flag),
    }
)


@dataclass(frozen=True, slots=True)
class MessageState:
    core: c.Core

    @property
    def statuses(self) -> frozenset[str]:
        return c.statuses(self.core)

    @property
    def marks(self) -> frozenset[str]:
        """The ``message_rates`` counters this message has reached."""
        row = render(self)
        reached = {
            "sent": row["sent_at"] is not None,
            "received": row["received_at"] is not None,
            "accepted": row["accepted_at"] is not None,
            "failed": row["failed_at"] is not None,
            "imdn_delivered": row["delivered_at"] is not None,
            "imdn_failed": any(s in self.core.firsts for s in IMDN_FAILED),
        }
        return frozenset(name for name, hit in reached.items() if hit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MessageState:
        return cls(c.core_from_dict(data["core"]))


def step(
    state: MessageState | None, env: Envelope, cfg: ProcessorConfig
) -> tuple[MessageState, list[Row]]:
    """Fold one message event; emits the message row when it changed."""
    new = MessageState(c.observe(state.core if state else None, env, SPEC))
    return _publish(state, new)


def deadline(state: MessageState, cfg: ProcessorConfig) -> int | None:
    if not c.is_open(state.core):
        return None
    return state.core.last_event_at + cfg.message_idle_timeout_ms


def expire(
    state: MessageState, now_ms: int, cfg: ProcessorConfig
) -> tuple[MessageState, list[Row]]:
    """Close (no row: nothing in the row changes) when idle at ``now_ms``."""
    core = c.timed_out(state.core, deadline(state, cfg), now_ms)
    if core is None:
        return state, []
    return _publish(state, MessageState(core))


def _publish(old: MessageState | None, new: MessageState) -> tuple[MessageState, list[Row]]:
    core, rows = c.publish(TABLE, None if old is None else render(old), render(new), new.core)
    return replace(new, core=core), rows


def _min(*times: int | None) -> int | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def final_status(core: c.Core, sent: bool, received: bool) -> str:
    """Most significant status reached (``RANK``); sendMessage implies SENT and
    OnMessageEvent implies RECEIVED; unknown statuses only when nothing ranked is reached."""
    reached = (
        set(core.firsts) | ({"SENT"} if sent else set()) | ({"RECEIVED"} if received else set())
    )
    if not reached:
        return ""
    return max(reached, key=lambda s: (RANK.index(s) if s in RANK else -1, s))


def render(state: MessageState) -> dict[str, Any]:
    """The ``messages`` row without ``version``."""
    core = state.core
    sent_at = _min(core.methods.get("sendMessage"), c.at(c.first(core, "SENT")))
    received_at = _min(core.methods.get("OnMessageEvent"), c.at(c.first(core, "RECEIVED")))
    outgoing, incoming = "sendMessage" in core.methods, "OnMessageEvent" in core.methods
    failed = c.first(core, "FAILED")
    return {
        "message_id": core.key,
        "node_id": c.field(core, "node_id", ""),
        "app_key": c.field(core, "app_key", ""),
        "session_id": c.field(core, "session_id", ""),
        "direction": "outgoing" if outgoing else ("incoming" if incoming else ""),
        "sender": c.field(core, "sender", ""),
        "recipient": c.field(core, "recipient", ""),
        "content_type": c.field(core, "content_type", ""),
        "imdn_required": c.field(core, "imdn_required", False),
        "created_at": core.created_at,
        "sent_at": sent_at,
        "received_at": received_at,
        "accepted_at": c.at(c.first(core, "ACCEPTED")),
        "delivered_at": c.at(c.first(core, "IMDN_DELIVERED")),
        "failed_at": c.at(failed),
        "last_event_at": core.last_event_at,
        "final_status": final_status(core, outgoing, incoming),
        "info": c.info_for(core, failed),
    }
