"""Exact money: Decimals parsed from text, one explicit context that traps inexact steps,
and the single rounding of a session's cost.

Sums and products of deck amounts are exact at ``CONTEXT``'s precision (an inexact step
raises ``decimal.Inexact`` rather than round silently). The only division, by the seconds
of a price unit, happens inside ``round_ratio`` as an exact integer division with a
remainder, so the one rounding a session gets is applied to the exact amount.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from typing import Final

CONTEXT: Final = decimal.Context(
    prec=60,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)
ROUNDING_MODES: Final = ("half_up", "half_even", "half_down", "up", "down")
_AMOUNT = re.compile(r"^\d{1,15}(\.\d{1,12})?$")
ZERO: Final = Decimal(0)


def parse_amount(text: object) -> Decimal:
    """A non-negative amount from its decimal text (``"0.0125"``); ValueError otherwise.

    Floats are refused: a TOML ``0.1`` is a binary float, write ``"0.1"``.
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f'amounts are written as text, e.g. "0.05", not {text!r}')
    if _AMOUNT.match(str(text).strip()) is None:
        raise ValueError(f"not a non-negative decimal amount: {text!r}")
    return Decimal(str(text).strip())


def round_ratio(numerator: Decimal, denominator: int, decimals: int, mode: str) -> Decimal:
    """``numerator / denominator`` rounded once to ``decimals`` places (``mode``), exactly.

    ``numerator`` >= 0 and ``denominator`` >= 1. The quotient is scaled to an integer count
    of the smallest unit and rounded from its exact remainder: no intermediate rounding.
    """
    scaled = CONTEXT.multiply(numerator, Decimal(10) ** decimals)
    whole, rest = divmod(scaled, Decimal(denominator))  # both exact: integer part, remainder
    twice = CONTEXT.multiply(rest, Decimal(2))
    units = int(whole)
    if rest == 0:
        pass
    elif mode == "up":
        units += 1
    elif mode == "down":
        pass
    elif twice > denominator:
        units += 1
    elif twice == denominator:
        units += mode == "half_up" or (mode == "half_even" and units % 2 == 1)
    return Decimal(units).scaleb(-decimals)


def fmt(amount: Decimal, decimals: int) -> str:
    """``amount`` with exactly ``decimals`` places (it is already rounded to them)."""
    return f"{amount:.{decimals}f}"
