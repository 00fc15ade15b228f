"""Properties of ``rate``: monotonic in duration, exact against a Fraction oracle, and
period splitting that never loses or adds a billed second (DST days included)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.rating.deck import Rate
from sinks.rating.rate import RatedLine, rate
from sinks.rating.tiers import billed_seconds
from tests.unit.rating_decks import BUSINESS, berlin_ms, call, call_rate, deck_of

# instants around both 2026 DST changes and an ordinary week
STARTS = st.sampled_from(
    [berlin_ms(t) for t in ("2026-03-27T17:00:00", "2026-10-23T17:00:00", "2026-03-02T07:00:00")]
).flatmap(lambda base: st.integers(base, base + 4 * 86_400_000))
TALK = st.integers(0, 3 * 3_600_000)
AMOUNT = st.decimals(0, 10, places=4).map(lambda d: Decimal(str(d)))
INCREMENTS = st.sampled_from(["1/1", "60/6", "30/30", "60:60, 300:30, 6", "6", "60"])


@st.composite
def rates(draw: st.DrawFn) -> Rate:
    low = draw(st.none() | AMOUNT)
    high = draw(st.none() | AMOUNT.filter(lambda h: low is None or h >= low))
    return call_rate(
        "0",
        draw(INCREMENTS),
        prices={"peak": draw(AMOUNT), "offpeak": draw(AMOUNT)},
        connect_fee=draw(AMOUNT),
        no_charge_ms=draw(st.sampled_from([0, 3_000])),
        min_cost=low,
        max_cost=high,
        unit_s=draw(st.sampled_from([1, 60, 3600])),
    )


def cost_of(rule: Rate, talk_ms: int, start_ms: int, decimals: int = 2) -> RatedLine:
    line = rate(call(talk_ms, start_ms), deck_of(rule, periods=BUSINESS, decimals=decimals))
    assert isinstance(line, RatedLine)
    return line


@settings(max_examples=200, deadline=None)
@given(rates(), STARTS, TALK, TALK)
def test_cost_is_monotonic_in_duration(rule: Rate, start: int, a: int, b: int) -> None:
    short, long = sorted((a, b))
    assert cost_of(rule, short, start).cost <= cost_of(rule, long, start).cost


@settings(max_examples=200, deadline=None)
@given(rates(), STARTS, TALK, st.integers(0, 6))
def test_cost_is_the_exact_amount_rounded_once(
    rule: Rate, start: int, talk: int, decimals: int
) -> None:
    line = cost_of(rule, talk, start, decimals)
    assert sum(s for _, _, s in line.usage) == billed_seconds(talk, rule.tiers)
    if talk < rule.no_charge_ms:
        assert line.cost == 0
        return
    exact = Fraction(rule.connect_fee) + sum(
        Fraction(seconds) * Fraction(rule.prices[period]) / rule.unit_s
        for _, period, seconds in line.usage
    )
    if rule.min_cost is not None:
        exact = max(exact, Fraction(rule.min_cost))
    if rule.max_cost is not None:
        exact = min(exact, Fraction(rule.max_cost))
    scaled = exact * 10**decimals
    half_up = int(scaled) + (scaled - int(scaled) >= Fraction(1, 2))
    assert line.cost == Decimal(half_up).scaleb(-decimals)
    assert -line.cost.as_tuple().exponent == decimals  # type: ignore[operator]
    assert sum([line.cost] * 7, Decimal(0)) == 7 * line.cost


@settings(max_examples=200, deadline=None)
@given(STARTS, TALK, INCREMENTS)
def test_periods_split_increments_and_never_change_the_billed_total(
    start: int, talk: int, increments: str
) -> None:
    rule = call_rate("0", increments, prices={"peak": Decimal(1), "offpeak": Decimal(0)})
    line = cost_of(rule, talk, start)
    assert line.billed_seconds == billed_seconds(talk, rule.tiers)
    # each increment is priced by its start: off-peak seconds cost nothing, peak 1/min
    peak = sum(s for _, period, s in line.usage if period == "peak")
    assert line.cost == (Decimal(peak) / 60).quantize(Decimal("0.01"), "ROUND_HALF_UP")
