"""Streams (family ``stream``, key ``mediaSessionId``) -> tables ``streams``, ``keepalive_gaps``.

Pure rules over a mutable ``StreamState`` (``apply``/``deadline``/``expire``/``render``).
Semantics and formulas: docs/processing.md#streams.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from events.envelope import Envelope
from events.tables import Row
from processors import entity as e
from processors import keepalive
from processors import values as v
from processors.config import ProcessorConfig

TABLE: Final = "streams"
GAPS: Final = "keepalive_gaps"
KEEPALIVE: Final = "StreamKeepAliveEvent"
STARTED: Final = ("PUBLISHING", "PLAYING")
ENDED: Final = ("UNPUBLISHED", "STOPPED", "FAILED")
KIND_PRIORITY: Final = ("rtsp", "hls", "publish", "play")
KIND_BY_METHOD: Final = {
    "publishStream": "publish",
    "unPublishStream": "publish",
    "playStream": "play",
    "stopStream": "play",
    "playHLS": "hls",
    "playRTSP": "rtsp",
}

SPEC: Final = e.spec(
    {
        "name": ("name", v.text),
        "published": ("published", v.flag),
        "media_provider": ("mediaProvider", v.text),
        "record": ("record", v.flag),
        "has_audio": ("hasAudio", v.flag),
        "has_video": ("hasVideo", v.flag),
        "custom": ("custom", v.json_text),
    },
    terminal=frozenset(ENDED),
    side_methods=frozenset(
        {"RecordingStatusEvent", "StreamEvent", "sendStreamEvent", "snapshot", "availableStream"}
    ),
)


class StreamState(e.Entity):
    __slots__ = ("keepalives", "kinds")
    NESTED: ClassVar[dict[str, Any]] = {"keepalives": keepalive.KeepAlives}

    def __init__(self, key: str, t: int, incarnation: int = 0) -> None:
        super().__init__(key, t, incarnation)
        self.kinds: tuple[str, ...] = ()  # sorted kind hints seen
        self.keepalives = keepalive.KeepAlives()


def kind_hints(env: Envelope) -> tuple[str, ...]:
    body = env["body"]
    hints = []
    by_method = KIND_BY_METHOD.get(env["method"])
    if by_method is not None:
        hints.append(by_method)
    published = v.flag(body.get("published"))
    if published is not None:
        hints.append("publish" if published else "play")
    media_type = body.get("mediaType")
    if media_type == "publish" or media_type == "play":
        hints.append(media_type)
    provider = body.get("mediaProvider")
    if provider is not None and str(provider).upper() == "HLS":
        hints.append("hls")
    return tuple(hints)


def first_keepalive(state: StreamState, env: Envelope) -> bool:
    """The event was the stream's first keep-alive (its deadline moved earlier)."""
    return env["method"] == KEEPALIVE and state.keepalives.count == 1


def apply(state: StreamState, env: Envelope, cfg: ProcessorConfig) -> str | None:
    """Fold one stream event in place; returns the status it reached first (for counting)."""
    changed, new = e.observe(state, env, SPEC)
    if env["method"] not in SPEC.side_methods:
        kinds = state.kinds
        for hint in kind_hints(env):
            if hint not in kinds:
                kinds = tuple(sorted({hint, *kinds}))
        if kinds is not state.kinds:
            state.kinds, changed = kinds, True
        if env["method"] == KEEPALIVE:
            window, threshold = cfg.keepalive_reorder_window, cfg.gap_threshold_ms
            ka = state.keepalives
            changed = keepalive.observe(ka, env["received_at"], window, threshold) or changed
    state.changes += int(changed)
    return new


def deadline(state: StreamState, cfg: ProcessorConfig) -> int | None:
    """keepalive_timeout after the last event once keep-alives were seen, else idle timeout."""
    if not e.is_open(state):
        return None
    had_keepalives = state.keepalives.count > 0
    quiet = cfg.keepalive_timeout if had_keepalives else cfg.stream_idle_timeout_ms
    return state.last_event_at + quiet


def expire(state: StreamState, now_ms: int, cfg: ProcessorConfig) -> bool:
    """Close by timeout when the deadline is due at ``now_ms``; True when it closed."""
    return e.time_out(state, deadline(state, cfg), now_ms)


def take_gap_rows(state: StreamState) -> list[Row]:
    """The gap rows changed since the last call (each ``gap_start`` once, latest change)."""
    pending = state.keepalives.pending
    if not pending:
        return []
    scope = {
        "media_session_id": state.key,
        "node_id": e.field(state, "node_id", ""),
        "app_key": e.field(state, "app_key", ""),
        "name": e.field(state, "name", ""),
    }
    rows: list[Row] = [
        (
            GAPS,
            {
                **scope,
                "gap_start": start,
                "gap_end": end,
                "gap_ms": end - start,
                "is_deleted": int(deleted),
                "version": version,
            },
        )
        for start, (end, deleted, version) in sorted(pending.items())
    ]
    state.keepalives.pending = keepalive.NONE
    return rows


def kind(state: StreamState) -> str:
    return next((k for k in KIND_PRIORITY if k in state.kinds), "")


def render(state: StreamState) -> dict[str, Any]:
    """The ``streams`` row without ``version``."""
    v = e.values(state)
    terminal = e.first(state, *ENDED)
    timed_out = state.timed_out_at is not None
    ended_at = e.at(terminal) if terminal else (state.last_event_at if timed_out else None)
    started_at = e.at(e.first(state, *STARTED))
    lifetime = None
    if started_at is not None and ended_at is not None:
        lifetime = max(0, ended_at - started_at)
    ka = state.keepalives
    return {
        "media_session_id": state.key,
        "incarnation": state.incarnation,
        "node_id": v.get("node_id", ""),
        "app_key": v.get("app_key", ""),
        "session_id": v.get("session_id", ""),
        "name": v.get("name", ""),
        "kind": kind(state),
        "published": v.get("published", kind(state) == "publish"),
        "media_provider": v.get("media_provider", ""),
        "record": v.get("record", False),
        "has_audio": v.get("has_audio", False),
        "has_video": v.get("has_video", False),
        "created_at": state.created_at,
        "started_at": started_at,
        "ended_at": ended_at,
        "last_event_at": state.last_event_at,
        "lifetime_ms": lifetime,
        "status": e.current_status(state),
        "final_status": e.status_named(state, terminal),
        "info": e.info_for(state, terminal),
        "keepalive_count": ka.count,
        "keepalive_max_gap_ms": ka.max_gap,
        "closed_by": "" if ended_at is None else ("event" if terminal else "timeout"),
        "custom": v.get("custom", ""),
    }
