"""Stream lifecycles (``mediaSessionId`` keyed): publishers, WebRTC viewers, HLS viewers.

A live stream gets a StreamKeepAliveEvent every interval (+- jitter). ``*_GAP`` outcomes skip
exactly one keep-alive (a gap of ~2 intervals: above 1.5 intervals, below the 3-interval
timeout). ``KA_STOP`` streams never end: their keep-alives stop and the trace goes on past
the timeout (``early`` placement), so they close by timeout.
"""

from __future__ import annotations

import random
from typing import Any

from wcs_analytics.simulate.config import SimConfig
from wcs_analytics.simulate.ids import secret, uuid4
from wcs_analytics.simulate.lifecycle import Context, Lifecycle

PUBLISHER_OUTCOMES = {"UNPUBLISHED": 0.85, "ICE_FAILED": 0.15}  # + UNPUBLISHED_GAP (gap_rate)
VIEWER_OUTCOMES = {"STOPPED": 0.75, "HLS": 0.25}  # + STOPPED_GAP (gap_rate)
OPEN = ("KA_STOP",)
QUICK = (5, 40)


def _stream_fields(rng: random.Random, lc: Lifecycle, name: str, published: bool) -> dict[str, Any]:
    return {
        "mediaSessionId": lc.key,
        "name": name,
        "published": published,
        "hasVideo": True,
        "hasAudio": True,
        "record": published and rng.random() < 0.2,
        "mediaProvider": "WebRTC",
    }


def _live(lc: Lifecycle, rng: random.Random, cfg: SimConfig, fields: dict[str, Any]) -> None:
    """Keep-alives with status PUBLISHING/PLAYING; a gap skips one of them."""
    status = "PUBLISHING" if fields["published"] else "PLAYING"
    interval, jitter = cfg.keepalive_interval_ms, cfg.keepalive_jitter_ms
    room = (cfg.duration_ms - cfg.tail_ms - 60_000) // interval
    count = rng.randint(2, max(2, min(15, room)))
    gap = lc.outcome.endswith("_GAP")
    skip = rng.randint(1, count - 1) if gap else -1
    count += int(gap)  # the skipped one does not count
    ka = {k: fields[k] for k in ("mediaSessionId", "name", "published", "hasVideo", "record")}
    base = lc.clock
    for index in range(count):
        if index != skip:
            due = base + (index + 1) * interval + rng.randint(-jitter, jitter) - lc.clock
            lc.add(
                rng,
                (due, due),
                "StreamKeepAliveEvent",
                "keepalive",
                **ka,
                status=status,
                info="",
                mediaProvider=fields["mediaProvider"],
            )


def _stop_delay(cfg: SimConfig) -> tuple[int, int]:
    """A client stop comes before the next keep-alive would be due."""
    return 100, max(101, cfg.keepalive_interval_ms - 2 * cfg.keepalive_jitter_ms)


def build_publisher(rng: random.Random, ctx: Context, cfg: SimConfig, outcome: str) -> Lifecycle:
    lc = Lifecycle("publisher", uuid4(rng), ctx, outcome, "early" if outcome in OPEN else "any")
    fields = _stream_fields(rng, lc, f"stream-{rng.randint(1, 10**6)}", True)
    lc.add(rng, (1, 1), "publishStream", **fields, status="PENDING", custom={"room": "r1"})
    if outcome == "ICE_FAILED":
        info = "Failed by ICE timeout"
        lc.add(rng, (3_000, 10_000), "StreamStatusEvent", **fields, status="FAILED", info=info)
        return lc
    event = {"mediaType": "publish", "audioCodec": "opus", "videoCodec": "H264", "transport": "UDP"}
    lc.add(
        rng,
        (20, 400),
        "StreamStatusEvent",
        **fields,
        **event,
        status="PUBLISHING",
        createDate=lc.clock,
        info="",
    )
    _live(lc, rng, cfg, fields)
    if outcome != "KA_STOP":
        lc.add(rng, _stop_delay(cfg), "unPublishStream", **fields)
        lc.add(
            rng,
            QUICK,
            "StreamStatusEvent",
            **fields,
            status="UNPUBLISHED",
            info="Stopped by publisher stop",
        )
    return lc


def build_viewer(
    rng: random.Random, ctx: Context, cfg: SimConfig, outcome: str, name: str
) -> Lifecycle:
    """WebRTC viewer (playStream) or HLS viewer (playHLS with a token, id ``<uuid>-<name>-HLS``)."""
    key = uuid4(rng)
    if outcome == "HLS":
        key = f"{key}-{name}-HLS"
    lc = Lifecycle("viewer", key, ctx, outcome, "early" if outcome in OPEN else "any")
    fields = _stream_fields(rng, lc, name, False)
    if outcome == "HLS":
        fields["mediaProvider"] = "HLS"
        token = {"token": secret(rng)}
        lc.add(rng, (1, 1), "playHLS", **fields, status="NEW", custom=token)
    else:
        lc.add(rng, (1, 1), "playStream", **fields, status="PENDING", custom={"room": "r1"})
    event = {"mediaType": "play", "audioCodec": "opus", "videoCodec": "H264", "transport": "UDP"}
    lc.add(rng, (50, 500), "StreamStatusEvent", **fields, **event, status="PLAYING", info="")
    _live(lc, rng, cfg, fields)
    if outcome != "KA_STOP":
        lc.add(rng, _stop_delay(cfg), "stopStream", **fields)
        lc.add(rng, QUICK, "StreamStatusEvent", **fields, status="STOPPED", info="Stopped by user")
    return lc
