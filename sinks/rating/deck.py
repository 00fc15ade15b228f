"""The rate deck model: revisions in force from ``effective_from``, rates and selection.

A session is rated by the revision in force at its **rating instant** (a call's answer,
or its creation if it was never answered; a stream's start; a message's ``sent_at``): the
revision with the latest ``effective_from`` at or before that instant. Within it the rate
is the one for the session's product whose selectors match, the most specific first:
an exact ``app_key`` beats ``*``, then the longest callee prefix, then an exact direction
beats ``any``. ``load.py`` refuses two rates with the same selectors, so the pick is unique.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sinks.rating.periods import Periods
from sinks.rating.prefix import longest
from sinks.rating.tiers import Tier

PRODUCTS = ("call", "publish", "play", "hls", "rtsp", "message")
TIMED = ("call", "publish", "play", "hls", "rtsp")
DIRECTIONS = ("incoming", "outgoing", "any")
UNITS = {"second": 1, "minute": 60, "hour": 3600}


@dataclass(frozen=True, slots=True)
class Rate:
    rate_id: str
    product: str
    app_key: str  # "*": any application
    direction: str  # incoming, outgoing or any
    prefix: str  # normalised callee prefix ("" matches every number); calls only
    currency: str
    prices: Mapping[str, Decimal]  # period -> price per unit (per message for messages)
    unit_s: int = 60
    tiers: tuple[Tier, ...] = (Tier(None, 1),)
    connect_fee: Decimal = Decimal(0)
    attempt_fee: Decimal = Decimal(0)  # calls: every attempt, answered or not
    no_charge_ms: int = 0  # a session shorter than this costs 0
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    source: str = ""  # file:line, for messages

    @property
    def selectors(self) -> tuple[str, str, str, str]:
        return (self.product, self.app_key, self.direction, self.prefix)


@dataclass(frozen=True, slots=True)
class Revision:
    revision_id: str
    effective_from_ms: int
    rates: tuple[Rate, ...]

    def match(self, product: str, app_key: str, direction: str, number: str) -> Rate | None:
        candidates = [
            r
            for r in self.rates
            if r.product == product
            and r.app_key in (app_key, "*")
            and r.direction in (direction, "any")
            and longest(number, (r.prefix,)) is not None
        ]
        if not candidates:
            return None
        return max(
            candidates, key=lambda r: (r.app_key != "*", len(r.prefix), r.direction != "any")
        )


@dataclass(frozen=True, slots=True)
class Deck:
    revisions: tuple[Revision, ...]  # ordered by effective_from_ms, no two equal
    periods: Periods
    decimals: int = 2
    rounding: str = "half_up"
    digest: str = ""  # sha256 of the deck files: names and bytes

    def revision_at(self, instant_ms: int) -> Revision | None:
        starts = [r.effective_from_ms for r in self.revisions]
        index = bisect.bisect_right(starts, instant_ms) - 1
        return self.revisions[index] if index >= 0 else None
