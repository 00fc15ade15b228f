"""Decks built in code for the rating tests (sinks/rating); times in Europe/Berlin."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sinks.rating.deck import Deck, Rate, Revision
from sinks.rating.periods import Periods, Window, parse_days
from sinks.rating.rate import Session
from sinks.rating.tiers import parse_tiers

BERLIN = ZoneInfo("Europe/Berlin")
PEAK = Window("peak", parse_days("mon-fri"), 8 * 3600, 18 * 3600)
BUSINESS = Periods(BERLIN, (PEAK,), "offpeak")
FLAT = Periods(BERLIN)


def berlin_ms(text: str) -> int:
    """Epoch ms of a Berlin wall-clock time ``2026-03-02T17:59:30`` (fold 0)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp() * 1000)


def call_rate(price: str = "0.60", increments: str = "60:60, 6", **fields: Any) -> Rate:
    values: dict[str, Any] = {
        "rate_id": "r",
        "product": "call",
        "app_key": "*",
        "direction": "any",
        "prefix": "",
        "currency": "EUR",
        "prices": {"all": Decimal(price)},
        "tiers": parse_tiers(increments),
    }
    return Rate(**(values | fields))


def deck_of(*rates: Rate, periods: Periods = FLAT, **settings: Any) -> Deck:
    return Deck((Revision("r1", 0, rates),), periods, **settings)


def call(
    talk_ms: int | None,
    start_ms: int = berlin_ms("2026-03-02T10:00:00"),
    number: str = "",
    app: str = "A",
    direction: str = "outgoing",
    key: str = "c1",
) -> Session:
    """A closed call answered at ``start_ms`` (None: never answered)."""
    end = start_ms + (talk_ms or 0)
    answered = None if talk_ms is None else start_ms
    return Session(
        key, "call", app, direction, number, start_ms - 5000, answered, end, talk_ms or 0
    )
