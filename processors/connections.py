"""WebSocket sessions (family ``connection``, key ``nodeId/sessionId``) -> ``connections``.

Pure ``step``/``deadline``/``expire``. ``RegistrationStatusEvent`` is a side event:
it sets ``registration_status`` and its statuses are counted for the connection,
but its ``FAILED`` does not end the session. See docs/processing.md#connections.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from events.envelope import Envelope
from events.tables import Row
from processors import core as c
from processors import values as v
from processors.config import ProcessorConfig

TABLE: Final = "connections"
REGISTRATION: Final = "RegistrationStatusEvent"
ENDED: Final = ("DISCONNECTED", "FAILED")

SPEC: Final = c.Spec(
    fields={
        "sip_login": ("sipLogin", v.text),
        "client_version": ("clientVersion", v.text),
        "client_os_version": ("clientOSVersion", v.text),
        "client_browser_version": ("clientBrowserVersion", v.text),
        "custom": ("custom", v.json_text),
    },
    terminal=frozenset(ENDED),
    side_methods=frozenset({REGISTRATION}),
)


@dataclass(frozen=True, slots=True)
class ConnectionState(c.CoreState):
    core: c.Core
    registration: c.Stamp | None = None  # latest (t, id, status) of RegistrationStatusEvent

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConnectionState:
        return cls(c.core_from_dict(data["core"]), v.tuplify(data["registration"]))


def step(
    state: ConnectionState | None, env: Envelope, cfg: ProcessorConfig
) -> tuple[ConnectionState, list[Row]]:
    """Fold one connection event; emits the connection row when it changed."""
    core = c.observe(state.core if state else None, env, SPEC)
    new = ConnectionState(core) if state is None else replace(state, core=core)
    status = c.status_of(env["body"])
    if env["method"] == REGISTRATION and status is not None:
        stamp = (env["received_at"], env["id"], status)
        new = replace(new, registration=c.later(new.registration, stamp))
    return _publish(state, new)


def deadline(state: ConnectionState, cfg: ProcessorConfig) -> int | None:
    if not c.is_open(state.core):
        return None
    return state.core.last_event_at + cfg.connection_idle_timeout_ms


def expire(
    state: ConnectionState, now_ms: int, cfg: ProcessorConfig
) -> tuple[ConnectionState, list[Row]]:
    """Close by timeout when idle at ``now_ms``; otherwise unchanged."""
    core = c.timed_out(state.core, deadline(state, cfg), now_ms)
    if core is None:
        return state, []
    return _publish(state, replace(state, core=core))


def _publish(
    old: ConnectionState | None, new: ConnectionState
) -> tuple[ConnectionState, list[Row]]:
    core, rows = c.publish(TABLE, None if old is None else render(old), render(new), new.core)
    return replace(new, core=core), rows


def render(state: ConnectionState) -> dict[str, Any]:
    """The ``connections`` row without ``version``."""
    core = state.core
    terminal = c.first(core, *ENDED)
    timed_out = core.timed_out_at is not None
    ended_at = c.at(terminal) if terminal else (core.last_event_at if timed_out else None)
    connected_at = core.methods.get("connect")
    established_at = c.at(c.first(core, "ESTABLISHED"))
    began = next(t for t in (established_at, connected_at, core.created_at) if t is not None)
    return {
        "node_id": c.field(core, "node_id", ""),
        "session_id": c.field(core, "session_id", ""),
        "app_key": c.field(core, "app_key", ""),
        "sip_login": c.field(core, "sip_login", ""),
        "client_version": c.field(core, "client_version", ""),
        "client_os_version": c.field(core, "client_os_version", ""),
        "client_browser_version": c.field(core, "client_browser_version", ""),
        "created_at": core.created_at,
        "connected_at": connected_at,
        "established_at": established_at,
        "ended_at": ended_at,
        "last_event_at": core.last_event_at,
        "duration_ms": None if ended_at is None else max(0, ended_at - began),
        "status": c.current_status(core),
        "final_status": c.status_named(core, terminal),
        "info": c.info_for(core, terminal),
        "registration_status": "" if state.registration is None else state.registration[2],
        "closed_by": "" if ended_at is None else ("event" if terminal else "timeout"),
        "custom": c.field(core, "custom", ""),
    }
