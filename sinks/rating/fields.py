"""One rate from its fields (a TOML ``[[rate]]`` table or a CSV row), validated.

``rate_from_fields`` raises ``FieldError(field, message)``; ``load.py`` adds the file and
line. Every field is optional except ``product`` and ``price``; amounts are decimal text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sinks.rating.deck import DIRECTIONS, PRODUCTS, TIMED, UNITS, Rate
from sinks.rating.money import parse_amount
from sinks.rating.prefix import normalise
from sinks.rating.tiers import Tier, parse_tiers

FIELDS = (
    "id", "product", "app_key", "direction", "prefix", "price", "unit", "increments",
    "connect_fee", "attempt_fee", "no_charge_below", "min_cost", "max_cost", "currency",
)  # fmt: skip
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check(field: str, ok: bool, message: str) -> None:
    if not ok:
        raise FieldError(field, message)


def _amount(fields: Mapping[str, Any], name: str) -> Decimal | None:
    if fields.get(name) in (None, ""):
        return None
    try:
        return parse_amount(fields[name])
    except ValueError as exc:
        raise FieldError(name, str(exc)) from None


def _prices(value: Any, periods: frozenset[str], default: str) -> dict[str, Decimal]:
    if isinstance(value, Mapping):
        _check("price", set(value) == periods, f"price per period needs {sorted(periods)}")
        return {name: _amount(value, name) or Decimal(0) for name in value}
    _check("price", value not in (None, ""), "a rate needs a price")
    price = _amount({"price": value}, "price") or Decimal(0)
    return dict.fromkeys(periods or {default}, price)


def rate_from_fields(
    fields: Mapping[str, Any], rate_id: str, currency: str, periods: frozenset[str]
) -> Rate:
    unknown = sorted(set(fields) - set(FIELDS) - {f"price_{p}" for p in periods})
    _check(unknown[0] if unknown else "", not unknown, f"unknown field (known: {FIELDS})")
    product = str(fields.get("product") or "")
    _check("product", product in PRODUCTS, f"product {product!r}: use one of {PRODUCTS}")
    direction = str(fields.get("direction") or "any")
    _check("direction", direction in DIRECTIONS, f"direction {direction!r}: use {DIRECTIONS}")
    prefix = normalise(str(fields.get("prefix") or ""))
    _check("prefix", not prefix or product == "call", "only call rates select by prefix")
    unit = str(fields.get("unit") or ("message" if product == "message" else "minute"))
    allowed = tuple(UNITS) if product in TIMED else ("message",)
    _check("unit", unit in allowed, f"{product} unit {unit!r}: use {allowed}")
    increments = fields.get("increments") or "1"
    _check("increments", product in TIMED or increments == "1", "messages have no increments")
    try:
        tiers: tuple[Tier, ...] = parse_tiers(str(increments))
    except ValueError as exc:
        raise FieldError("increments", str(exc)) from None
    attempt_fee = _amount(fields, "attempt_fee") or Decimal(0)
    _check("attempt_fee", product == "call" or not attempt_fee, "only calls have attempts")
    below = _amount(fields, "no_charge_below") or Decimal(0)
    _check("no_charge_below", product in TIMED or not below, "messages have no duration")
    _check("no_charge_below", (below * 1000) % 1 == 0, "seconds with at most 3 decimals")
    low, high = _amount(fields, "min_cost"), _amount(fields, "max_cost")
    _check("max_cost", low is None or high is None or low <= high, "max_cost is below min_cost")
    currency = str(fields.get("currency") or currency)
    _check("currency", bool(_CURRENCY.match(currency)), f"currency {currency!r}: ISO 4217 code")
    split = {p: fields[f"price_{p}"] for p in periods if fields.get(f"price_{p}") not in (None, "")}
    price = split or fields.get("price")
    return Rate(
        rate_id=str(fields.get("id") or rate_id),
        product=product,
        app_key=str(fields.get("app_key") or "*"),
        direction=direction,
        prefix=prefix,
        currency=currency,
        prices=_prices(price, periods, "all"),
        unit_s=UNITS.get(unit, 1),
        tiers=tiers,
        connect_fee=_amount(fields, "connect_fee") or Decimal(0),
        attempt_fee=attempt_fee,
        no_charge_ms=int(below * 1000),
        min_cost=low,
        max_cost=high,
        source=rate_id,
    )
