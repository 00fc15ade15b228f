"""Call lifecycles (``callId`` keyed): outgoing ``call`` or incoming ``OnCallEvent`` through
CallStatusEvent TRYING, RING | SESSION_PROGRESS, ESTABLISHED (+ HOLD intervals), FINISH,
BUSY, FAILED. Consecutive status changes that matter for hold time are >= 2 s apart, so a
retry (<= 1 s late) never lands inside a different interval."""

from __future__ import annotations

import random
from typing import Any

from wcs_analytics.simulate.ids import secret, uuid4
from wcs_analytics.simulate.lifecycle import Context, Lifecycle

OUTCOMES = {"ANSWERED": 0.55, "BUSY": 0.08, "BUSY_FINISH": 0.05, "FAILED": 0.1, "NO_ANSWER": 0.22}
OPEN = ("OPEN_RINGING", "OPEN_ANSWERED")
DISPOSITION = {
    "ANSWERED": "ANSWERED",
    "BUSY": "BUSY",
    "BUSY_FINISH": "BUSY",
    "FAILED": "FAILED",
    "NO_ANSWER": "NO_ANSWER",
    "OPEN_RINGING": "IN_PROGRESS",
    "OPEN_ANSWERED": "ANSWERED",  # answered is final; ended_at/duration stay None
}
QUICK = (5, 40)  # a direct hook and the status event it causes


def _party(rng: random.Random) -> str:
    return (
        str(rng.randint(1000, 1999))
        if rng.random() < 0.7
        else f"+7{rng.randint(10**9, 10**10 - 1)}"
    )


def _status(
    lc: Lifecycle, rng: random.Random, delay: tuple[int, int], status: str, **f: Any
) -> None:
    call = lc.steps[0].body
    shared = {k: call[k] for k in ("callId", "incoming", "caller", "callee", "hasVideo")}
    extra = {"hasAudio": True, "mediaProvider": "WebRTC", "info": "", **f}
    lc.add(rng, delay, "CallStatusEvent", **shared, status=status, **extra)


def _start(rng: random.Random, ctx: Context, outcome: str) -> Lifecycle:
    call_id = uuid4(rng)
    lc = Lifecycle("call", call_id, ctx, outcome, "late" if outcome in OPEN else "any")
    incoming = rng.random() < 0.3 and outcome not in ("FAILED",)
    fields: dict[str, Any] = {
        "callId": call_id,
        "incoming": incoming,
        "caller": _party(rng),
        "callee": _party(rng),
        "visibleName": "",
        "hasAudio": True,
        "hasVideo": rng.random() < 0.25,
        "mediaProvider": "WebRTC",
        "isMsrp": False,
        "holdForTransfer": False,
    }
    if incoming:
        lc.add(rng, (1, 1), "OnCallEvent", **fields, status="PENDING")
        return lc
    fields["custom"] = {"crmId": rng.randint(1, 10**6)}
    if rng.random() < 0.3:
        fields["sipPassword"] = secret(rng, 6)
    lc.add(rng, (1, 1), "call", **fields)
    _status(lc, rng, QUICK, "TRYING", sipStatus=100)
    return lc


def _ring(lc: Lifecycle, rng: random.Random) -> None:
    if rng.random() < 0.8:
        _status(lc, rng, (100, 1500), "RING", sipStatus=180)
    else:
        _status(lc, rng, (100, 1500), "SESSION_PROGRESS", sipStatus=183)


def _answer(lc: Lifecycle, rng: random.Random, holds: int) -> None:
    if lc.steps[0].body["incoming"]:
        lc.add(rng, (1500, 15_000), "answer", callId=lc.key)
        _status(lc, rng, QUICK, "ESTABLISHED", sipStatus=200)
    else:
        _status(lc, rng, (1500, 20_000), "ESTABLISHED", sipStatus=200)
    for _ in range(holds):
        lc.add(rng, (2_000, 30_000), "hold", callId=lc.key)
        _status(lc, rng, QUICK, "HOLD", sipStatus=200, role="hold")
        lc.add(rng, (2_000, 20_000), "unhold", callId=lc.key)
        _status(lc, rng, QUICK, "ESTABLISHED", sipStatus=200, role="unhold")


def build(rng: random.Random, ctx: Context, outcome: str) -> Lifecycle:
    lc = _start(rng, ctx, outcome)
    if outcome in ("ANSWERED", "NO_ANSWER", "OPEN_RINGING", "OPEN_ANSWERED") or rng.random() < 0.5:
        _ring(lc, rng)
    if outcome == "ANSWERED":
        _answer(lc, rng, rng.choice((0, 0, 0, 1, 2)))
        if rng.random() < 0.5:
            lc.add(rng, (2_000, 150_000), "hangup", callId=lc.key)
            _status(lc, rng, QUICK, "FINISH", sipStatus=200, info="Normal call clearing")
        else:
            _status(lc, rng, (2_000, 150_000), "FINISH", info="Normal call clearing")
    elif outcome == "OPEN_ANSWERED":
        _answer(lc, rng, 0)
    elif outcome in ("BUSY", "BUSY_FINISH"):
        _status(lc, rng, (200, 3_000), "BUSY", sipStatus=486, info="Busy here")
        if outcome == "BUSY_FINISH":
            _status(lc, rng, QUICK, "FINISH", info="Normal call clearing")
    elif outcome == "FAILED":
        _status(lc, rng, (100, 2_000), "FAILED", sipStatus=403, info="SIP 403 FORBIDDEN")
    elif outcome == "NO_ANSWER":
        _status(lc, rng, (15_000, 60_000), "FINISH", info="Normal call clearing")
    return lc
