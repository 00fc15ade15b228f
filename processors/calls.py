"""Call sessions (family ``call``, key ``callId``) -> table ``calls``.

Pure rules over a mutable ``CallState``: ``apply`` folds one event in place, ``deadline``
/ ``expire`` close by timeout, ``render`` gives the row. No IO, no clock. Semantics and
formulas: docs/processing.md#calls.
"""

from __future__ import annotations

from typing import Any, Final

from events.envelope import Envelope
from processors import entity as e
from processors import values as v
from processors.config import ProcessorConfig

TABLE: Final = "calls"
RINGING: Final = ("RING", "RING_MEDIA", "SESSION_PROGRESS")
ENDED: Final = ("FINISH", "FAILED")
TERMINAL: Final = frozenset({"FINISH", "FAILED", "BUSY"})
HOLD_LIMIT: Final = 128  # distinct (t, status) observations kept for hold_ms
INT32: Final = 2**31

SPEC: Final = e.spec(
    {
        "caller": ("caller", v.text),
        "callee": ("callee", v.text),
        "incoming": ("incoming", v.flag),
        "has_video": ("hasVideo", v.flag),
        "media_provider": ("mediaProvider", v.text),
        "custom": ("custom", v.json_text),
    },
    terminal=TERMINAL,
    side_methods=frozenset({"transfer", "TransferStatusEvent", "OnTransferEvent", "sendDTMF"}),
)


class CallState(e.Entity):
    __slots__ = ("holds", "sip", "terminal_sip")

    def __init__(self, key: str, t: int, incarnation: int = 0) -> None:
        super().__init__(key, t, incarnation)
        self.sip: e.Stamp | None = None  # latest (t, id, sipStatus) of a lifecycle event
        self.terminal_sip: e.Stamp | None = None  # (t, id, sipStatus | None) of the first end
        self.holds: tuple[tuple[int, str], ...] = ()  # distinct (t, status), newest kept


def sip_status(value: Any) -> int | None:
    """sipStatus as an int (int or numeric string within Int32), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and -INT32 <= value < INT32:
        return value
    return None


def apply(state: CallState, env: Envelope, cfg: ProcessorConfig) -> str | None:
    """Fold one call event in place; returns the status it reached first (for counting)."""
    changed, new = e.observe(state, env, SPEC)
    if env["method"] not in SPEC.side_methods:
        changed = _lifecycle(state, env) or changed
    state.changes += int(changed)
    return new


def _lifecycle(state: CallState, env: Envelope) -> bool:
    t, eid, body = env["received_at"], env["id"], env["body"]
    changed = False
    sip = sip_status(body.get("sipStatus"))
    if sip is not None and e.follows(t, eid, state.sip):
        state.sip, changed = (t, eid, sip), True
    status = e.status_of(body)
    if status in TERMINAL and e.precedes(t, eid, state.terminal_sip):
        state.terminal_sip, changed = (t, eid, sip), True
    if status is not None and (t, status) not in state.holds:
        state.holds = tuple(sorted((*state.holds, (t, status))))[-HOLD_LIMIT:]
        changed = True
    return changed


def deadline(state: CallState, cfg: ProcessorConfig) -> int | None:
    """Idle timeout, or the setup timeout while neither answered nor ended; None once closed."""
    if not e.is_open(state):
        return None
    due = state.last_event_at + cfg.call_idle_timeout_ms
    if "ESTABLISHED" not in state.firsts:
        due = min(due, state.created_at + cfg.call_setup_timeout_ms)
    return due


def expire(state: CallState, now_ms: int, cfg: ProcessorConfig) -> bool:
    """Close by timeout when the deadline is due at ``now_ms``; True when it closed."""
    return e.time_out(state, deadline(state, cfg), now_ms)


def _end(state: CallState) -> tuple[int | None, e.Stamp | None]:
    """(ended_at, terminal event): first FINISH/FAILED, else first BUSY, else timeout."""
    terminal = e.first(state, *ENDED) or e.first(state, "BUSY")
    if terminal is not None:
        return terminal[0], terminal
    return (state.last_event_at if state.timed_out_at is not None else None), None


def hold_ms(holds: tuple[tuple[int, str], ...], end: int) -> int:
    """Time from each HOLD to the next non-HOLD status (time order), clipped at ``end``."""
    total, since = 0, None
    for t, status in holds:
        if t > end:
            break
        if status == "HOLD":
            since = t if since is None else since
        elif since is not None:
            total, since = total + t - since, None
    return total + (end - since if since is not None else 0)


def disposition(state: CallState, ended: bool) -> str:
    for status, name in (("ESTABLISHED", "ANSWERED"), ("BUSY", "BUSY"), ("FAILED", "FAILED")):
        if status in state.firsts:
            return name
    return "NO_ANSWER" if ended else "IN_PROGRESS"


def outcome(state: CallState) -> tuple[int | None, str]:
    """(sip_status, info): from the call's first terminal event (FINISH, FAILED or BUSY)
    once it has one -- None / '' when WCS sent none there; before that (open, or closed by
    timeout) from the latest lifecycle event carrying them."""
    first_end = e.first(state, *TERMINAL)
    if first_end is not None and state.terminal_sip is not None:
        return state.terminal_sip[2], first_end[2]
    sip = None if state.sip is None else state.sip[2]
    return sip, "" if state.latest_info is None else state.latest_info[2]


def render(state: CallState) -> dict[str, Any]:
    """The ``calls`` row without ``version``."""
    v = e.values(state)
    ended_at, terminal = _end(state)
    ringing_at = e.at(e.first(state, *RINGING))
    answered_at = e.at(e.first(state, "ESTABLISHED"))
    if answered_at is not None and ended_at is not None and answered_at > ended_at:
        answered_at = ended_at  # an end received a few ms before the answer it follows
    talk = None
    if ended_at is not None:
        talk = 0 if answered_at is None else ended_at - answered_at
    sip, info = outcome(state)
    return {
        "call_id": state.key,
        "incarnation": state.incarnation,
        "node_id": v.get("node_id", ""),
        "app_key": v.get("app_key", ""),
        "session_id": v.get("session_id", ""),
        "caller": v.get("caller", ""),
        "callee": v.get("callee", ""),
        "incoming": v.get("incoming", False),
        "has_video": v.get("has_video", False),
        "media_provider": v.get("media_provider", ""),
        "created_at": state.created_at,
        "ringing_at": ringing_at,
        "answered_at": answered_at,
        "ended_at": ended_at,
        "last_event_at": state.last_event_at,
        "status": e.current_status(state),
        "disposition": disposition(state, ended_at is not None),
        "pdd_ms": None if ringing_at is None else ringing_at - state.created_at,
        "duration_ms": None if ended_at is None else ended_at - state.created_at,
        "talk_ms": talk,
        "hold_ms": hold_ms(state.holds, state.last_event_at if ended_at is None else ended_at),
        "sip_status": sip,
        "info": info,
        "closed_by": "" if ended_at is None else ("event" if terminal else "timeout"),
        "custom": v.get("custom", ""),
    }
