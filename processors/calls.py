"""Call sessions (family ``call``, key ``callId``) -> table ``calls``.

Pure: ``step``/``deadline``/``expire`` take the state and return a new one plus the
rows to emit. Semantics and formulas: docs/processing.md#calls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from events.envelope import Envelope
from events.tables import Row
from processors import core as c
from processors import values as v
from processors.config import ProcessorConfig

TABLE: Final = "calls"
RINGING: Final = ("RING", "RING_MEDIA", "SESSION_PROGRESS")
ENDED: Final = ("FINISH", "FAILED")
HOLD_LIMIT: Final = 128  # distinct (t, status) observations kept for hold_ms
INT32: Final = 2**31

SPEC: Final = c.Spec(
    fields={
        "caller": ("caller", v.text),
        "callee": ("callee", v.text),
        "incoming": ("incoming", v.flag),
        "has_video": ("hasVideo", v.flag),
        "media_provider": ("mediaProvider", v.text),
        "custom": ("custom", v.json_text),
    },
    terminal=frozenset({"FINISH", "FAILED", "BUSY"}),
    side_methods=frozenset({"transfer", "TransferStatusEvent", "OnTransferEvent", "sendDTMF"}),
)

SipStamp = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class CallState(c.CoreState):
    core: c.Core
    sip: SipStamp | None = None  # latest (t, id, sipStatus) of a lifecycle event
    holds: tuple[tuple[int, str], ...] = ()  # distinct (t, status), time-sorted, newest kept

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallState:
        return cls(c.core_from_dict(data["core"]), v.tuplify(data["sip"]), v.tuplify(data["holds"]))


def sip_status(value: Any) -> int | None:
    """sipStatus as an int (int or numeric string within Int32), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and -INT32 <= value < INT32:
        return value
    return None


def step(
    state: CallState | None, env: Envelope, cfg: ProcessorConfig
) -> tuple[CallState, list[Row]]:
    """Fold one call event; emits the call row when it changed."""
    core = c.observe(state.core if state else None, env, SPEC)
    new = CallState(core) if state is None else replace(state, core=core)
    if c.is_lifecycle(env, SPEC):
        t, body = env["received_at"], env["body"]
        sip = sip_status(body.get("sipStatus"))
        if sip is not None:
            new = replace(new, sip=c.later(new.sip, (t, env["id"], sip)))
        status = c.status_of(body)
        if status is not None and (t, status) not in new.holds:
            new = replace(new, holds=tuple(sorted((*new.holds, (t, status))))[-HOLD_LIMIT:])
    return _publish(state, new)


def deadline(state: CallState, cfg: ProcessorConfig) -> int | None:
    """Idle timeout, or the setup timeout while neither answered nor ended; None once closed."""
    core = state.core
    if not c.is_open(core):
        return None
    due = core.last_event_at + cfg.call_idle_timeout_ms
    if "ESTABLISHED" not in core.firsts:
        due = min(due, core.created_at + cfg.call_setup_timeout_ms)
    return due


def expire(state: CallState, now_ms: int, cfg: ProcessorConfig) -> tuple[CallState, list[Row]]:
    """Close by timeout when the deadline is due at ``now_ms``; otherwise unchanged."""
    core = c.timed_out(state.core, deadline(state, cfg), now_ms)
    if core is None:
        return state, []
    return _publish(state, replace(state, core=core))


def _publish(old: CallState | None, new: CallState) -> tuple[CallState, list[Row]]:
    core, rows = c.publish(TABLE, None if old is None else render(old), render(new), new.core)
    return replace(new, core=core), rows


def _end(core: c.Core) -> tuple[int | None, c.Stamp | None]:
    """(ended_at, terminal event): first FINISH/FAILED, else first BUSY, else timeout."""
    terminal = c.first(core, *ENDED) or c.first(core, "BUSY")
    if terminal is not None:
        return terminal[0], terminal
    return (core.last_event_at if core.timed_out_at is not None else None), None


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


def disposition(core: c.Core, ended: bool) -> str:
    for status, name in (("ESTABLISHED", "ANSWERED"), ("BUSY", "BUSY"), ("FAILED", "FAILED")):
        if status in core.firsts:
            return name
    return "NO_ANSWER" if ended else "IN_PROGRESS"


def render(state: CallState) -> dict[str, Any]:
    """The ``calls`` row without ``version``."""
    core = state.core
    ended_at, terminal = _end(core)
    ringing_at = c.at(c.first(core, *RINGING))
    answered_at = c.at(c.first(core, "ESTABLISHED"))
    talk = None
    if ended_at is not None:
        talk = 0 if answered_at is None else max(0, ended_at - answered_at)
    return {
        "call_id": core.key,
        "node_id": c.field(core, "node_id", ""),
        "app_key": c.field(core, "app_key", ""),
        "session_id": c.field(core, "session_id", ""),
        "caller": c.field(core, "caller", ""),
        "callee": c.field(core, "callee", ""),
        "incoming": c.field(core, "incoming", False),
        "has_video": c.field(core, "has_video", False),
        "media_provider": c.field(core, "media_provider", ""),
        "created_at": core.created_at,
        "ringing_at": ringing_at,
        "answered_at": answered_at,
        "ended_at": ended_at,
        "last_event_at": core.last_event_at,
        "status": c.current_status(core),
        "disposition": disposition(core, ended_at is not None),
        "pdd_ms": None if ringing_at is None else ringing_at - core.created_at,
        "duration_ms": None if ended_at is None else ended_at - core.created_at,
        "talk_ms": talk,
        "hold_ms": hold_ms(state.holds, core.last_event_at if ended_at is None else ended_at),
        "sip_status": None if state.sip is None else state.sip[2],
        "info": c.info_for(core, terminal),
        "closed_by": "" if ended_at is None else ("event" if terminal else "timeout"),
        "custom": c.field(core, "custom", ""),
    }
