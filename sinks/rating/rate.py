"""``rate(session, deck)``: one closed session -> its priced line, or why it is unrated.

Cost, exact until the one rounding (``money.round_ratio``, the deck's decimals and mode):

* a call never answered costs its rate's ``attempt_fee``;
* a session shorter than ``no_charge_ms`` costs 0 (fees included);
* otherwise ``attempt_fee + connect_fee + sum(billed seconds x price of their period) /
  unit``, raised to ``min_cost`` and capped at ``max_cost``; a message is one unit.

Billed seconds come in increments (``tiers``) laid from the session's start; each
increment is priced by the period in force at the instant it **starts** (``periods``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sinks.rating.deck import Deck, Rate
from sinks.rating.money import CONTEXT, ZERO, round_ratio
from sinks.rating.periods import Periods
from sinks.rating.prefix import normalise
from sinks.rating.tiers import spans

Usage = tuple[tuple[int, str, int], ...]  # (tier, period, billed seconds)


@dataclass(frozen=True, slots=True)
class Session:
    key: str  # call_id, media_session_id or message_id
    product: str  # call, publish, play, hls, rtsp, message
    app_key: str
    direction: str  # incoming, outgoing ('' when unknown)
    number: str  # callee as recorded (calls), '' otherwise
    created_ms: int
    start_ms: int | None  # answered_at, started_at or sent_at; None: never answered
    end_ms: int | None  # None: still open
    duration_ms: int = 0  # talk_ms or lifetime_ms


@dataclass(frozen=True, slots=True)
class RatedLine:
    session: Session
    revision_id: str
    rate: Rate
    usage: Usage
    cost: Decimal
    attempt_fee: Decimal = ZERO  # as charged (0 below the no-charge threshold)
    connect_fee: Decimal = ZERO  # as charged (0 for an unanswered call)

    @property
    def billed_seconds(self) -> int:
        return sum(seconds for _, _, seconds in self.usage)


@dataclass(frozen=True, slots=True)
class Unrated:
    session: Session
    reason: str


def rate(session: Session, deck: Deck) -> RatedLine | Unrated:
    if session.end_ms is None:
        return Unrated(session, "open")
    instant = session.created_ms if session.start_ms is None else session.start_ms
    revision = deck.revision_at(instant)
    if revision is None:
        return Unrated(session, f"no revision in force at {_iso(instant)}")
    number = normalise(session.number) if session.product == "call" else ""
    chosen = revision.match(session.product, session.app_key, session.direction, number)
    if chosen is None:
        what = f"app_key {session.app_key!r}, direction {session.direction or 'none'!r}"
        what += f", number {number!r}" if session.product == "call" else ""
        return Unrated(session, f"no {session.product} rate in {revision.revision_id}: {what}")
    usage = _usage(session, chosen, deck.periods)
    attempt, connect = _fees(session, chosen)
    exact = _exact(session, chosen, usage, attempt, connect)
    cost = round_ratio(exact, chosen.unit_s, deck.decimals, deck.rounding)
    return RatedLine(session, revision.revision_id, chosen, usage, cost, attempt, connect)


def _fees(session: Session, chosen: Rate) -> tuple[Decimal, Decimal]:
    """(attempt fee, connect fee) as charged."""
    if session.start_ms is None:
        return chosen.attempt_fee, ZERO
    if session.product != "message" and session.duration_ms < chosen.no_charge_ms:
        return ZERO, ZERO
    return chosen.attempt_fee, chosen.connect_fee


def _usage(session: Session, chosen: Rate, periods: Periods) -> Usage:
    if session.start_ms is None:
        return ()
    if session.product == "message":
        return ((0, periods.at(session.start_ms), 0),)
    parts = spans(session.duration_ms, chosen.tiers)
    if not parts:
        return ()
    last = parts[-1]
    end = session.start_ms + last.offset_ms + last.count * last.step_ms
    segments = periods.segments(session.start_ms, end)
    out: list[tuple[int, str, int]] = []
    for span in parts:
        first = session.start_ms + span.offset_ms
        for low, high, name in segments:
            lo = max(0, -(-(low - first) // span.step_ms))
            hi = min(span.count, -(-(high - first) // span.step_ms))
            if hi > lo:
                out.append((span.tier, name, (hi - lo) * span.step_ms // 1000))
    return tuple(out)


def _exact(session: Session, chosen: Rate, usage: Usage, attempt: Decimal, connect: Decimal
           ) -> Decimal:  # fmt: skip
    """The session's amount times ``unit_s`` (so the only division is the final one)."""
    unit = Decimal(chosen.unit_s)
    if session.start_ms is None:
        return CONTEXT.multiply(attempt, unit)
    if session.product != "message" and session.duration_ms < chosen.no_charge_ms:
        return ZERO
    total = CONTEXT.multiply(CONTEXT.add(attempt, connect), unit)
    for _, period, seconds in usage:
        units = Decimal(1) if session.product == "message" else Decimal(seconds)
        total = CONTEXT.add(total, CONTEXT.multiply(units, chosen.prices[period]))
    if chosen.min_cost is not None:
        total = max(total, CONTEXT.multiply(chosen.min_cost, unit))
    if chosen.max_cost is not None:
        total = min(total, CONTEXT.multiply(chosen.max_cost, unit))
    return total


def _iso(instant_ms: int) -> str:
    return datetime.fromtimestamp(instant_ms / 1000, UTC).isoformat(timespec="milliseconds")
