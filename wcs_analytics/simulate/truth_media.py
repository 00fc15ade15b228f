"""Ground truth rows for calls, streams and keep-alive gaps (semantics: see ``truth``).

* calls: ``created_at`` = first hook; ``ringing_at`` = first RING | SESSION_PROGRESS;
  ``answered_at`` = first ESTABLISHED; ``ended_at`` = first FINISH | FAILED, else first BUSY;
  disposition ANSWERED (ESTABLISHED seen, even while open) > BUSY > FAILED > NO_ANSWER
  (ended), else IN_PROGRESS (open calls start less than the set-up timeout before the end);
  ``pdd_ms`` = ringing - created; ``duration_ms`` = ended - created; ``talk_ms`` =
  ended - answered (0 if never answered, None while open); ``hold_ms`` sums each HOLD
  until the entity's next status hook;
* streams: ``started_at`` = first PUBLISHING | PLAYING (status event or keep-alive);
  ``ended_at`` = first UNPUBLISHED | STOPPED | FAILED (``closed_by`` ``event``), or for a
  stream whose keep-alives stop its last hook, retries included (``closed_by`` ``timeout``,
  ``final_status`` ''); keep-alives are counted by distinct ``received_at`` (a retry
  arrives later and counts), gaps are consecutive keep-alives further apart than 1.5 intervals.
"""

from __future__ import annotations

import itertools
from typing import Any

from wcs_analytics.simulate.calls import DISPOSITION, OPEN
from wcs_analytics.simulate.config import SimConfig
from wcs_analytics.simulate.lifecycle import Lifecycle

CLOSED_BY_EVENT = "event"
CLOSED_BY_TIMEOUT = "timeout"
TIMEOUT_STATUS = ""  # no terminal status was reached
STREAM_END = ("UNPUBLISHED", "STOPPED", "FAILED")


def _diff(end: int | None, start: int | None) -> int | None:
    return None if end is None or start is None else end - start


def scope(lc: Lifecycle) -> dict[str, Any]:
    return {"app_key": lc.ctx.app_key, "node_id": lc.ctx.node_id, "session_id": lc.ctx.session_id}


def hold_ms(lc: Lifecycle) -> int:
    """Each HOLD lasts until the next status hook in lifecycle order (its unhold)."""
    total = 0
    for index, step in enumerate(lc.steps):
        if step.role == "hold":
            following = next(s for s in lc.steps[index + 1 :] if s.status)
            total += following.at - step.at
    return total


def call_row(lc: Lifecycle) -> dict[str, Any]:
    first = lc.steps[0].body
    disposition = DISPOSITION[lc.outcome]
    created = min(s.at for s in lc.steps)
    answered = lc.first("ESTABLISHED")
    ringing = lc.first("RING", "SESSION_PROGRESS")
    ended = None
    if lc.outcome not in OPEN:
        ended = lc.first("FINISH", "FAILED")
        ended = lc.first("BUSY") if ended is None else ended
    talk = None if ended is None else (0 if answered is None else ended - answered)
    return {
        "call_id": lc.key,
        **scope(lc),
        "caller": first["caller"],
        "callee": first["callee"],
        "incoming": first["incoming"],
        "disposition": disposition,
        "created_at": created,
        "ringing_at": ringing,
        "answered_at": answered,
        "ended_at": ended,
        "pdd_ms": _diff(ringing, created),
        "duration_ms": _diff(ended, created),
        "talk_ms": talk,
        "hold_ms": hold_ms(lc),
        "closed_by": CLOSED_BY_EVENT if ended is not None else "",
    }


def keepalive_times(lc: Lifecycle) -> list[int]:
    return sorted({s.at for s in (*lc.steps, *lc.retries) if s.method == "StreamKeepAliveEvent"})


def stream_kind(lc: Lifecycle) -> str:
    """``publish``, ``play`` (WebRTC viewer) or ``hls`` (HLS viewer)."""
    if lc.kind == "publisher":
        return "publish"
    return "hls" if lc.steps[0].method == "playHLS" else "play"


def stream_row(lc: Lifecycle) -> dict[str, Any]:
    times = keepalive_times(lc)
    ended = lc.first(*STREAM_END)
    final, closed_by = "", ""
    if ended is not None:
        final = next(s.status for s in lc.steps if s.status in STREAM_END)
        closed_by = CLOSED_BY_EVENT
    elif lc.outcome == "KA_STOP":
        ended, final, closed_by = lc.last_at(), TIMEOUT_STATUS, CLOSED_BY_TIMEOUT
    started = lc.first("PUBLISHING", "PLAYING")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return {
        "media_session_id": lc.key,
        **scope(lc),
        "name": lc.steps[0].body["name"],
        "kind": stream_kind(lc),
        "media_provider": lc.steps[0].body["mediaProvider"],
        "created_at": min(s.at for s in lc.steps),
        "started_at": started,
        "ended_at": ended,
        "lifetime_ms": _diff(ended, started),
        "final_status": final,
        "keepalive_count": len(times),
        "keepalive_max_gap_ms": max(gaps, default=0),
        "closed_by": closed_by,
    }


def gap_rows(lc: Lifecycle, cfg: SimConfig) -> list[dict[str, Any]]:
    times = keepalive_times(lc)
    return [
        {
            "media_session_id": lc.key,
            "app_key": lc.ctx.app_key,
            "node_id": lc.ctx.node_id,
            "name": lc.steps[0].body["name"],
            "gap_start": a,
            "gap_end": b,
            "gap_ms": b - a,
        }
        for a, b in itertools.pairwise(times)
        if b - a > cfg.keepalive_gap_threshold_ms
    ]
