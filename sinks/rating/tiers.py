"""Billing increments in tiers: the A/B rule generalised.

``"60:60, 6"`` bills the first 60 s of a session in one 60 s increment, the rest in 6 s
increments; ``"60:60, 300:30, 1"`` adds 30 s steps up to 5 minutes. The last tier is a
bare step that runs to the end. ``"A/B"`` is shorthand for ``"A:A, B"`` (``60/6``, ``30/30``,
``1/1``); consecutive tiers of the same step are one tier. A started increment is
billed whole; a session of 0 ms bills nothing.

Every tier boundary is a whole number of that tier's increments past the previous one,
so increments never straddle a tier boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_AB = re.compile(r"^(\d{1,6})/(\d{1,6})$")
_TIER = re.compile(r"^(?:(\d{1,7}):)?(\d{1,6})$")


@dataclass(frozen=True, slots=True)
class Tier:
    until_s: int | None  # end of the tier in seconds of the session; None: to the end
    step_s: int


@dataclass(frozen=True, slots=True)
class Span:
    """``count`` increments of ``step_ms`` in tier ``tier`` (1-based), the first starting
    ``offset_ms`` after the session's start."""

    tier: int
    offset_ms: int
    step_ms: int
    count: int


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """Tiers from ``"60:60, 6"`` or ``"60/6"``; ValueError saying what is wrong."""
    text = text.strip()
    ab = _AB.match(text)
    if ab:
        text = f"{ab[1]}:{ab[1]}, {ab[2]}"
    tiers: list[Tier] = []
    previous = 0
    parts = [part.strip() for part in text.split(",")]
    for index, part in enumerate(parts):
        match = _TIER.match(part)
        last = index == len(parts) - 1
        if match is None or int(match[2]) < 1 or (match[1] is None) != last:
            raise ValueError(
                f"increments {text!r}: write UNTIL:STEP tiers then a final STEP (e.g. 60:60, 6)"
            )
        until, step = (None if match[1] is None else int(match[1])), int(match[2])
        if until is not None and (until <= previous or (until - previous) % step):
            raise ValueError(
                f"increments {text!r}: tier up to {until} s must end a whole number of "
                f"{step} s steps after {previous} s"
            )
        if tiers and tiers[-1].step_s == step:  # "30:30, 30" is "30": one tier
            tiers.pop()
        tiers.append(Tier(until, step))
        previous = until or previous
    return tuple(tiers)


def spans(duration_ms: int, tiers: tuple[Tier, ...]) -> list[Span]:
    """The increments that bill a session of ``duration_ms`` (<= 0 bills none)."""
    out, low_ms = [], 0
    for number, tier in enumerate(tiers, start=1):
        if duration_ms <= low_ms:
            break
        high_ms = duration_ms if tier.until_s is None else min(duration_ms, tier.until_s * 1000)
        step_ms = tier.step_s * 1000
        out.append(Span(number, low_ms, step_ms, -(-(high_ms - low_ms) // step_ms)))
        low_ms = high_ms
    return out


def billed_seconds(duration_ms: int, tiers: tuple[Tier, ...]) -> int:
    return sum(span.count * span.step_ms for span in spans(duration_ms, tiers)) // 1000
