"""WebSocket sessions (family ``connection``, key ``nodeId/sessionId``) -> ``connections``.

Pure rules over a mutable ``ConnectionState``. ``RegistrationStatusEvent`` is a side
event: it sets ``registration_status`` and its statuses are counted for the connection,
but its ``FAILED`` does not end the session. See docs/processing.md#connections.
"""

from __future__ import annotations

from typing import Any, Final

from events.envelope import Envelope
from processors import entity as e
from processors import values as v
from processors.config import ProcessorConfig

TABLE: Final = "connections"
REGISTRATION: Final = "RegistrationStatusEvent"
ENDED: Final = ("DISCONNECTED", "FAILED")

SPEC: Final = e.spec(
    {
        "sip_login": ("sipLogin", v.text),
        "client_version": ("clientVersion", v.text),
        "client_os_version": ("clientOSVersion", v.text),
        "client_browser_version": ("clientBrowserVersion", v.text),
        "custom": ("custom", v.json_text),
    },
    terminal=frozenset(ENDED),
    side_methods=frozenset({REGISTRATION}),
    methods=frozenset({"connect"}),
)


class ConnectionState(e.Entity):
    __slots__ = ("registration",)

    def __init__(self, key: str, t: int, incarnation: int = 0) -> None:
        super().__init__(key, t, incarnation)
        self.registration: e.Stamp | None = None  # latest (t, id, status) of registrations


def apply(state: ConnectionState, env: Envelope, cfg: ProcessorConfig) -> str | None:
    """Fold one connection event in place; returns the status it reached first."""
    changed, new = e.observe(state, env, SPEC)
    status = e.status_of(env["body"])
    t, eid = env["received_at"], env["id"]
    registered = env["method"] == REGISTRATION and status is not None
    if registered and e.follows(t, eid, state.registration):
        state.registration, changed = (t, eid, status), True
    state.changes += int(changed)
    return new


def deadline(state: ConnectionState, cfg: ProcessorConfig) -> int | None:
    if not e.is_open(state):
        return None
    return state.last_event_at + cfg.connection_idle_timeout_ms


def expire(state: ConnectionState, now_ms: int, cfg: ProcessorConfig) -> bool:
    """Close by timeout when idle at ``now_ms``; True when it closed."""
    return e.time_out(state, deadline(state, cfg), now_ms)


def render(state: ConnectionState) -> dict[str, Any]:
    """The ``connections`` row without ``version``."""
    v = e.values(state)
    terminal = e.first(state, *ENDED)
    timed_out = state.timed_out_at is not None
    ended_at = e.at(terminal) if terminal else (state.last_event_at if timed_out else None)
    connected_at = state.methods.get("connect")
    established_at = e.at(e.first(state, "ESTABLISHED"))
    began = next(t for t in (established_at, connected_at, state.created_at) if t is not None)
    return {
        "node_id": v.get("node_id", ""),
        "session_id": v.get("session_id", ""),
        "incarnation": state.incarnation,
        "app_key": v.get("app_key", ""),
        "sip_login": v.get("sip_login", ""),
        "client_version": v.get("client_version", ""),
        "client_os_version": v.get("client_os_version", ""),
        "client_browser_version": v.get("client_browser_version", ""),
        "created_at": state.created_at,
        "connected_at": connected_at,
        "established_at": established_at,
        "ended_at": ended_at,
        "last_event_at": state.last_event_at,
        "duration_ms": None if ended_at is None else max(0, ended_at - began),
        "status": e.current_status(state),
        "final_status": e.status_named(state, terminal),
        "info": e.info_for(state, terminal),
        "registration_status": "" if state.registration is None else state.registration[2],
        "closed_by": "" if ended_at is None else ("event" if terminal else "timeout"),
        "custom": v.get("custom", ""),
    }
