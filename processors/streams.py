"""Streams (family ``stream``, key ``mediaSessionId``) -> tables ``streams``, ``keepalive_gaps``.

Pure ``step``/``deadline``/``expire``. Semantics and formulas: docs/processing.md#streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Final

from events.envelope import Envelope
from events.tables import Row
from processors import core as c
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

SPEC: Final = c.Spec(
    fields={
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


@dataclass(frozen=True, slots=True)
class StreamState(c.CoreState):
    core: c.Core
    kinds: tuple[str, ...] = ()  # sorted kind hints seen
    keepalives: keepalive.KeepAlives = field(default_factory=keepalive.KeepAlives)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamState:
        ka = keepalive.KeepAlives.from_dict(data["keepalives"])
        return cls(c.core_from_dict(data["core"]), tuple(data["kinds"]), ka)


def kind_hints(env: Envelope) -> set[str]:
    body = env["body"]
    hints = {KIND_BY_METHOD[env["method"]]} if env["method"] in KIND_BY_METHOD else set()
    published = v.flag(body.get("published"))
    if published is not None:
        hints.add("publish" if published else "play")
    if body.get("mediaType") in ("publish", "play"):
        hints.add(body["mediaType"])
    if str(body.get("mediaProvider", "")).upper() == "HLS":
        hints.add("hls")
    return hints


def step(
    state: StreamState | None, env: Envelope, cfg: ProcessorConfig
) -> tuple[StreamState, list[Row]]:
    """Fold one stream event; emits the stream row when it changed and any gap rows."""
    core = c.observe(state.core if state else None, env, SPEC)
    new = StreamState(core) if state is None else replace(state, core=core)
    if not c.is_lifecycle(env, SPEC):
        return _publish(state, new, [])
    kinds = tuple(sorted(set(new.kinds) | kind_hints(env)))
    changes: list[keepalive.GapChange] = []
    ka = new.keepalives
    if env["method"] == KEEPALIVE:
        window, threshold = cfg.keepalive_reorder_window, cfg.gap_threshold_ms
        ka, changes = keepalive.observe(ka, env["received_at"], window, threshold)
    return _publish(state, replace(new, kinds=kinds, keepalives=ka), changes)


def deadline(state: StreamState, cfg: ProcessorConfig) -> int | None:
    """keepalive_timeout after the last event once keep-alives were seen, else idle timeout."""
    core = state.core
    if not c.is_open(core):
        return None
    had_keepalives = state.keepalives.count > 0
    quiet = cfg.keepalive_timeout if had_keepalives else cfg.stream_idle_timeout_ms
    return core.last_event_at + quiet


def expire(state: StreamState, now_ms: int, cfg: ProcessorConfig) -> tuple[StreamState, list[Row]]:
    """Close by timeout when the deadline is due at ``now_ms``; otherwise unchanged."""
    core = c.timed_out(state.core, deadline(state, cfg), now_ms)
    if core is None:
        return state, []
    return _publish(state, replace(state, core=core), [])


def _publish(
    old: StreamState | None, new: StreamState, changes: list[keepalive.GapChange]
) -> tuple[StreamState, list[Row]]:
    core, rows = c.publish(TABLE, None if old is None else render(old), render(new), new.core)
    new = replace(new, core=core)
    return new, rows + [gap_row(new, change) for change in changes]


def gap_row(state: StreamState, change: keepalive.GapChange) -> Row:
    start, end, deleted, version = change
    core = state.core
    return (
        GAPS,
        {
            "media_session_id": core.key,
            "node_id": c.field(core, "node_id", ""),
            "app_key": c.field(core, "app_key", ""),
            "name": c.field(core, "name", ""),
            "gap_start": start,
            "gap_end": end,
            "gap_ms": end - start,
            "is_deleted": int(deleted),
            "version": version,
        },
    )


def kind(state: StreamState) -> str:
    return next((k for k in KIND_PRIORITY if k in state.kinds), "")


def render(state: StreamState) -> dict[str, Any]:
    """The ``streams`` row without ``version``."""
    core = state.core
    terminal = c.first(core, *ENDED)
    timed_out = core.timed_out_at is not None
    ended_at = c.at(terminal) if terminal else (core.last_event_at if timed_out else None)
    started_at = c.at(c.first(core, *STARTED))
    lifetime = None
    if started_at is not None and ended_at is not None:
        lifetime = max(0, ended_at - started_at)
    return {
        "media_session_id": core.key,
        "node_id": c.field(core, "node_id", ""),
        "app_key": c.field(core, "app_key", ""),
        "session_id": c.field(core, "session_id", ""),
        "name": c.field(core, "name", ""),
        "kind": kind(state),
        "published": c.field(core, "published", kind(state) == "publish"),
        "media_provider": c.field(core, "media_provider", ""),
        "record": c.field(core, "record", False),
        "has_audio": c.field(core, "has_audio", False),
        "has_video": c.field(core, "has_video", False),
        "created_at": core.created_at,
        "started_at": started_at,
        "ended_at": ended_at,
        "last_event_at": core.last_event_at,
        "lifetime_ms": lifetime,
        "status": c.current_status(core),
        "final_status": c.status_named(core, terminal),
        "info": c.info_for(core, terminal),
        "keepalive_count": state.keepalives.count,
        "keepalive_max_gap_ms": state.keepalives.max_gap,
        "closed_by": "" if ended_at is None else ("event" if terminal else "timeout"),
        "custom": c.field(core, "custom", ""),
    }
