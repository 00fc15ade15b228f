"""The family registry: how the runtime drives each family's rules (states are opaque here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from events.catalog import KEY_FIELD, KEY_FIELD_BY_METHOD
from events.envelope import Envelope
from events.tables import Row
from processors import calls, connections, messages, side, streams
from processors.config import ProcessorConfig
from processors.entity import is_open as entity_open

MAX_KEY_BYTES: Final = 256


@dataclass(frozen=True, slots=True)
class Family:
    """Adapter over one family module."""

    name: str
    state_cls: type
    apply: Callable[[Any, Envelope, ProcessorConfig], str | None]
    deadline: Callable[[Any, ProcessorConfig], int | None]
    expire: Callable[[Any, int, ProcessorConfig], bool]
    is_open: Callable[[Any], bool]
    table: str | None = None
    render: Callable[[Any], dict[str, Any]] | None = None
    extra_rows: Callable[[Any], list[Row]] | None = None  # rows besides the entity's own
    starts: frozenset[str] = frozenset()  # methods that begin a session (key reuse)
    reusable: bool = False  # a key closed by a terminal event may start a new session

    def closed_at(self, state: Any) -> int | None:
        """When a closed state closed: its last event or its timeout, whichever is later."""
        if self.is_open(state):
            return None
        return int(max(state.last_event_at, state.timed_out_at or 0))


def _side_open(state: side.SeenState) -> bool:
    return state.timed_out_at is None


SIDE: Final = Family("side", side.SeenState, side.apply, side.deadline, side.expire, _side_open)

FAMILIES: Final[dict[str, Family]] = {
    "call": Family(
        "call", calls.CallState, calls.apply, calls.deadline, calls.expire, entity_open,
        calls.TABLE, calls.render, starts=frozenset({"call", "OnCallEvent"}), reusable=True,
    ),
    "stream": Family(
        "stream", streams.StreamState, streams.apply, streams.deadline, streams.expire,
        entity_open, streams.TABLE, streams.render, streams.take_gap_rows,
        starts=frozenset({"publishStream", "playStream", "playHLS", "playRTSP"}), reusable=True,
    ),
    "message": Family(
        "message", messages.MessageState, messages.apply, messages.deadline, messages.expire,
        entity_open, messages.TABLE, messages.render,
    ),
    "connection": Family(
        "connection", connections.ConnectionState, connections.apply, connections.deadline,
        connections.expire, entity_open, connections.TABLE, connections.render,
        starts=frozenset({"connect"}), reusable=True,
    ),
}  # fmt: skip


def family(name: str) -> Family:
    """The entity family, or the status-only one for subscription/data/diagnostic/unknown."""
    return FAMILIES.get(name, SIDE)


def _key_text(value: Any) -> str | None:
    """A usable key: a non-empty string or a number (not bool), at most MAX_KEY_BYTES."""
    if isinstance(value, str):
        if not value or (len(value) > MAX_KEY_BYTES // 4 and len(value.encode()) > MAX_KEY_BYTES):
            return None
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def entity_key(env: Envelope) -> tuple[str | None, str]:
    """(key, '') or (None, reason): the entity an event belongs to, from its body.

    Families keyed by a body field (callId, mediaSessionId, id/messageId, operationId)
    need that field; the others need a sessionId (key ``nodeId/sessionId``).
    """
    body = env["body"]
    name = KEY_FIELD.get(env["family"])
    if name is not None and env["method"] in KEY_FIELD_BY_METHOD:
        name = KEY_FIELD_BY_METHOD[env["method"]]
    if name is not None:
        value = body.get(name)
        if value.__class__ is str and 0 < len(value) <= MAX_KEY_BYTES // 4:
            return value, ""  # the common case: a short string
        key = _key_text(body.get(name))
        return (key, "") if key is not None else (None, f"bad_{name}")
    session = _key_text(body.get("sessionId"))
    if session is None:
        return None, "bad_sessionId"
    node = body.get("nodeId")
    node_text = _key_text(node) if node is not None else ""
    if node_text is None:
        return None, "bad_nodeId"
    key = f"{node_text}/{session}"
    return (key, "") if len(key.encode()) <= MAX_KEY_BYTES else (None, "bad_sessionId")
