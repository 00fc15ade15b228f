"""streams + keepalive_gaps: kinds, lifecycle, keep-alive gaps and their splits, timeouts."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.envs import (
    CFG,
    HOUR,
    assert_versions_increase,
    copy_state,
    expire,
    fold,
    last,
    live_gaps,
    of,
    step,
    streams,
    unversioned,
)

from processors import streams as mod
from processors.config import ProcessorConfig
from processors.state_codec import same

STEP, EXPIRE = step(mod), expire(mod)

E = streams(name="cam1")
KA = "StreamKeepAliveEvent"
SSE = "StreamStatusEvent"
PUBLISH = [
    E("publishStream", 1000, "PENDING", published=True, hasAudio=True, hasVideo=True, record=False),
    E(SSE, 1200, "PUBLISHING", mediaProvider="WebRTC", custom={"room": "r1"}),
    E(SSE, 9200, "UNPUBLISHED", info="Stopped by publisher stop"),
]
PUBLISH_ROW = {
    "media_session_id": "ms-1",
    "name": "cam1",
    "kind": "publish",
    "published": True,
    "media_provider": "WebRTC",
    "record": False,
    "has_audio": True,
    "has_video": True,
    "created_at": 1000,
    "started_at": 1200,
    "ended_at": 9200,
    "lifetime_ms": 8000,
    "status": "UNPUBLISHED",
    "final_status": "UNPUBLISHED",
    "info": "Stopped by publisher stop",
    "keepalive_count": 0,
    "keepalive_max_gap_ms": 0,
    "closed_by": "event",
    "custom": '{"room":"r1"}',
}

CASES: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("publish", PUBLISH, PUBLISH_ROW),
    ("reordered and duplicated", [PUBLISH[2], PUBLISH[0], PUBLISH[2], PUBLISH[1]], PUBLISH_ROW),
    (
        "play",
        [E("playStream", 1000, "PENDING"), E(SSE, 1100, "PLAYING", published=False)],
        {"kind": "play", "published": False, "started_at": 1100, "ended_at": None},
    ),
    (
        "publish kind without a published flag",
        [E("unPublishStream", 1000, "UNPUBLISHED")],
        {"kind": "publish", "published": True, "lifetime_ms": None, "final_status": "UNPUBLISHED"},
    ),
    (
        "hls beats play",
        [E(SSE, 1000, "PLAYING", published=False), E("playHLS", 900, "NEW", mediaProvider="HLS")],
        {"kind": "hls", "media_provider": "HLS", "status": "PLAYING", "created_at": 900},
    ),
    ("rtsp", [E("playRTSP", 1000, "NEW")], {"kind": "rtsp", "status": "NEW"}),
    ("no hint", [E("snapshot", 1000)], {"kind": "", "status": "", "published": False}),
    (
        "failed before start",
        [E(SSE, 1000, "FAILED", info="Failed by ICE error")],
        {"final_status": "FAILED", "started_at": None, "lifetime_ms": None, "closed_by": "event"},
    ),
    (
        "zero length",
        [E(SSE, 1000, "PLAYING"), E(SSE, 1000, "STOPPED")],
        {"lifetime_ms": 0, "final_status": "STOPPED", "status": "STOPPED"},
    ),
    (
        "keep-alive after the end does not resurrect",
        [E(SSE, 1000, "PUBLISHING"), E(SSE, 2000, "UNPUBLISHED"), E(KA, 2500, "PUBLISHING")],
        {"status": "UNPUBLISHED", "ended_at": 2000, "last_event_at": 2500, "keepalive_count": 1},
    ),
    (
        "recording failure does not end the stream",
        [E(SSE, 1000, "PUBLISHING"), E("RecordingStatusEvent", 1500, "FAILED", info="disk")],
        {"ended_at": None, "status": "PUBLISHING", "info": "", "last_event_at": 1500},
    ),
    (
        "keep-alives start the stream and count",
        [E(KA, 10_000, "PUBLISHING"), E(KA, 20_000, "PUBLISHING"), E(KA, 45_000, "PUBLISHING")],
        {"started_at": 10_000, "keepalive_count": 3, "keepalive_max_gap_ms": 25_000},
    ),
    (
        "keep-alives at the same time count once",
        [E(KA, 10_000, "PLAYING"), E(KA, 10_000, "PLAYING")],
        {"keepalive_count": 1, "keepalive_max_gap_ms": 0},
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stream_row(events: list[Any], expected: dict[str, Any]) -> None:
    state, rows = fold(STEP, events)
    row = last(rows, "streams")
    assert {k: row[k] for k in expected} == expected
    assert unversioned(row) == mod.render(state)
    assert row["version"] == state.version
    assert_versions_increase(of(rows, "streams"))


def keepalives(*times: int, cfg: ProcessorConfig = CFG) -> tuple[Any, list[Any]]:
    return fold(STEP, [E(KA, t, "PUBLISHING") for t in times], cfg)


GAPS: list[tuple[str, tuple[int, ...], list[tuple[int, int, int]], set[tuple[int, int]]]] = [
    ("regular beats: no gap", (0, 10_000, 20_000, 35_000), [], set()),
    ("gap over 1.5x interval", (0, 10_000, 26_000), [(10_000, 26_000, 0)], {(10_000, 26_000)}),
    (
        "late keep-alive splits a gap in two gaps",
        (0, 40_000, 20_000),
        [(0, 40_000, 0), (0, 20_000, 0), (20_000, 40_000, 0)],
        {(0, 20_000), (20_000, 40_000)},
    ),
    (
        "late keep-alive closes a gap",
        (0, 20_000, 10_000),
        [(0, 20_000, 0), (0, 20_000, 1)],
        set(),
    ),
    (
        "late keep-alive leaves one side of the gap",
        (0, 30_000, 10_000),
        [(0, 30_000, 0), (0, 30_000, 1), (10_000, 30_000, 0)],
        {(10_000, 30_000)},
    ),
    ("duplicate keep-alive", (0, 20_000, 20_000), [(0, 20_000, 0)], {(0, 20_000)}),
]


@pytest.mark.parametrize(
    ("times", "emitted", "live"), [g[1:] for g in GAPS], ids=[g[0] for g in GAPS]
)
def test_keepalive_gaps(
    times: tuple[int, ...], emitted: list[tuple[int, int, int]], live: set[tuple[int, int]]
) -> None:
    _, rows = keepalives(*times)
    gaps = of(rows, "keepalive_gaps")
    assert [(g["gap_start"], g["gap_end"], g["is_deleted"]) for g in gaps] == emitted
    assert live_gaps(rows) == live
    assert_versions_increase(gaps)
    assert all(g["gap_ms"] == g["gap_end"] - g["gap_start"] for g in gaps)
    assert all((g["name"], g["node_id"]) == ("cam1", "node-1@10.0.0.1") for g in gaps)


def test_keepalive_window_drops_too_old_times() -> None:
    cfg = ProcessorConfig(keepalive_reorder_window=3)
    state, _ = keepalives(0, 100_000, 110_000, 120_000, cfg=cfg)
    assert list(state.keepalives.times) == [100_000, 110_000, 120_000]
    assert (mod.render(state)["keepalive_count"], state.keepalives.max_gap) == (4, 100_000)
    assert state.keepalives.gaps == {}  # (0, 100_000) was final once 0 left the window
    before = copy_state(state)
    late, rows = STEP(state, E(KA, 50_000, "PUBLISHING"), cfg)
    assert rows == [] and same(late, before)


def test_duplicate_keepalive_emits_nothing() -> None:
    state, _ = keepalives(0, 10_000, 40_000)
    before = copy_state(state)
    _, rows = STEP(state, E(KA, 10_000, "PUBLISHING"), CFG)
    assert rows == [] and same(state, before)


def test_gap_is_emitted_with_the_stream_row() -> None:
    state, _ = keepalives(0)
    _, rows = STEP(state, E(KA, 16_000, "PUBLISHING"), CFG)
    assert [t for t, _ in rows] == ["streams", "keepalive_gaps"]
    assert rows[0][1]["keepalive_max_gap_ms"] == 16_000


def test_pending_gap_changes_keep_the_latest_per_gap_start() -> None:
    """Changes wait until rendered: a gap made and split before a flush is one row per start."""
    state = mod.StreamState("ms-1", 0)
    for t in (0, 40_000, 20_000):
        mod.apply(state, E(KA, t, "PUBLISHING"), CFG)
    rows = mod.take_gap_rows(state)
    assert [(r["gap_start"], r["gap_end"], r["is_deleted"]) for _, r in rows] == [
        (0, 20_000, 0),
        (20_000, 40_000, 0),
    ]
    assert rows[0][1]["version"] < rows[1][1]["version"]
    assert mod.take_gap_rows(state) == []


def test_first_keepalive_moves_the_deadline_earlier() -> None:
    state, _ = fold(STEP, [E(SSE, 1000, "PUBLISHING")])
    assert mod.deadline(state, CFG) == 1000 + CFG.stream_idle_timeout_ms
    ka = E(KA, 2000, "PUBLISHING")
    STEP(state, ka, CFG)
    assert mod.first_keepalive(state, ka)
    assert mod.deadline(state, CFG) == 2000 + CFG.keepalive_timeout
    second = E(KA, 3000, "PUBLISHING")
    STEP(state, second, CFG)
    assert not mod.first_keepalive(state, second)


KA_TIMEOUT, IDLE = CFG.keepalive_timeout, CFG.stream_idle_timeout_ms
TIMEOUTS: list[tuple[str, list[Any], int]] = [
    (
        "keep-alives stop",
        [E(SSE, 1000, "PUBLISHING"), E(KA, 11_000, "PUBLISHING")],
        11_000 + KA_TIMEOUT,
    ),
    ("never had keep-alives", [E(SSE, 1000, "PLAYING"), E(SSE, 2000, "PLAYING")], 2000 + IDLE),
]


@pytest.mark.parametrize(("events", "due"), [t[1:] for t in TIMEOUTS], ids=[t[0] for t in TIMEOUTS])
def test_timeout(events: list[Any], due: int) -> None:
    state, before = fold(STEP, events)
    assert mod.deadline(state, CFG) == due
    assert EXPIRE(state, due - 1, CFG) == []
    rows = EXPIRE(state, due, CFG)
    row = last(rows, "streams")
    last_event = events[-1]["received_at"]
    assert (row["closed_by"], row["ended_at"], row["final_status"]) == ("timeout", last_event, "")
    assert row["lifetime_ms"] == last_event - 1000
    assert row["version"] > last(before, "streams")["version"]
    assert mod.deadline(state, CFG) is None


def test_terminal_after_timeout_recloses_by_event() -> None:
    state, _ = fold(STEP, [E(SSE, 1000, "PUBLISHING")])
    EXPIRE(state, 1000 + IDLE, CFG)
    _, rows = STEP(state, E(SSE, 5000, "FAILED", info="Failed by RTP activity"), CFG)
    row = last(rows, "streams")
    assert (row["closed_by"], row["ended_at"], row["final_status"]) == ("event", 5000, "FAILED")
    assert row["info"] == "Failed by RTP activity"


def test_unpublished_36_hours_after_the_idle_timeout_wins() -> None:
    state, _ = fold(STEP, PUBLISH[:2])
    timed_out = last(EXPIRE(state, 1200 + IDLE, CFG), "streams")
    assert (timed_out["closed_by"], timed_out["ended_at"]) == ("timeout", 1200)
    end = 1200 + 36 * HOUR
    _, rows = STEP(state, E(SSE, end, "UNPUBLISHED", info="Stopped by publisher stop"), CFG)
    row = last(rows, "streams")
    assert {k: row[k] for k in ("closed_by", "ended_at", "final_status", "lifetime_ms")} == {
        "closed_by": "event",
        "ended_at": end,
        "final_status": "UNPUBLISHED",
        "lifetime_ms": end - 1200,
    }
    assert row["version"] > timed_out["version"]
