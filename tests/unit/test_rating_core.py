"""Rating building blocks, hand-computed: tiers, exact money, prefixes, periods (DST)."""

from __future__ import annotations

from decimal import Decimal, Inexact

import pytest

from sinks.rating.money import CONTEXT, parse_amount, round_ratio
from sinks.rating.periods import Periods, Window, parse_clock, parse_days
from sinks.rating.prefix import longest, normalise
from sinks.rating.tiers import Tier, billed_seconds, parse_tiers
from tests.unit.rating_decks import BERLIN, BUSINESS, berlin_ms

S = 1000


@pytest.mark.parametrize(
    ("increments", "talk_ms", "billed"),
    [
        ("60:60, 6", 0, 0),
        ("60:60, 6", 1, 60),
        ("60:60, 6", 59_999, 60),
        ("60:60, 6", 60 * S, 60),
        ("60:60, 6", 60 * S + 1, 66),
        ("60:60, 6", 66 * S, 66),
        ("60:60, 6", 66 * S + 1, 72),
        ("60/6", 60 * S + 1, 66),
        ("30/30", 30 * S + 1, 60),
        ("1/1", 61_500, 62),
        ("1", 1, 1),
        ("60:60, 300:30, 6", 61 * S, 90),
        ("60:60, 300:30, 6", 299_999, 300),
        ("60:60, 300:30, 6", 300 * S, 300),
        ("60:60, 300:30, 6", 300 * S + 1, 306),
    ],
)
def test_billed_seconds_at_each_tier_boundary(increments: str, talk_ms: int, billed: int) -> None:
    assert billed_seconds(talk_ms, parse_tiers(increments)) == billed


def test_tier_notation() -> None:
    assert parse_tiers("60/6") == (Tier(60, 60), Tier(None, 6))
    assert parse_tiers(" 60:60 , 300:30, 6 ") == (Tier(60, 60), Tier(300, 30), Tier(None, 6))
    assert parse_tiers("1/1") == parse_tiers("30:1, 1") == (Tier(None, 1),)
    assert parse_tiers("60") == (Tier(None, 60),)  # a bare step: 60 s steps from the start
    for bad in ("0/6", "60:60", "6, 60:60", "60:7, 6", "60:60, 90:60, 6", "x"):
        with pytest.raises(ValueError, match="increments"):
            parse_tiers(bad)


@pytest.mark.parametrize(
    ("numerator", "denominator", "decimals", "mode", "expected"),
    [
        ("30", 60, 2, "half_up", "0.50"),  # 60 s x 0.5/min, the 0.4980 case: exact
        ("0.3", 60, 2, "half_up", "0.01"),  # 0.005 -> up
        ("0.3", 60, 2, "half_even", "0.00"),  # 0.005 -> even
        ("0.9", 60, 2, "half_even", "0.02"),  # 0.015 -> even
        ("0.3", 60, 2, "half_down", "0.00"),
        ("0.31", 60, 2, "half_down", "0.01"),  # 0.005166.. -> nearest
        ("0.01", 60, 2, "up", "0.01"),
        ("0.59", 60, 2, "down", "0.00"),
        ("7", 3, 4, "half_up", "2.3333"),
        ("0", 60, 2, "up", "0.00"),
        ("1.5", 1, 0, "half_even", "2"),
        ("2.5", 1, 0, "half_even", "2"),
    ],
)
def test_round_ratio_rounds_the_exact_quotient_once(
    numerator: str, denominator: int, decimals: int, mode: str, expected: str
) -> None:
    result = round_ratio(Decimal(numerator), denominator, decimals, mode)
    assert str(result) == expected


def test_money_context_refuses_inexact_steps_and_floats() -> None:
    with pytest.raises(Inexact):
        CONTEXT.divide(Decimal(1), Decimal(3))
    with pytest.raises(ValueError, match="text"):
        parse_amount(0.1)
    with pytest.raises(ValueError, match="non-negative"):
        parse_amount("-1")
    assert parse_amount("0.0125") == Decimal("0.0125")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+49 151 2345-678", "491512345678"),
        ("0049151234", "49151234"),
        ("sip:+4930123@pbx.example.com;user=phone", "4930123"),
        ("SIPS:0044 20 7946 0000@gw", "442079460000"),
        ("tel:+1-202-555-0100", "12025550100"),
        ("(030) 1234", "0301234"),  # national format: kept as written
        ("sip:Alice@example.com", "alice"),
        ("", ""),
    ],
)
def test_number_normalisation(raw: str, normal: str) -> None:
    assert normalise(raw) == normal


def test_longest_prefix() -> None:
    prefixes = ["", "49", "4915", "491"]
    assert longest("4915123", prefixes) == "4915"
    assert longest("4930", prefixes) == "49"
    assert longest("33", prefixes) == ""
    assert longest("33", ["49"]) is None


@pytest.mark.parametrize(
    ("wall", "period"),
    [
        ("2026-03-02T07:59:59", "offpeak"),  # Monday
        ("2026-03-02T08:00:00", "peak"),
        ("2026-03-02T17:59:59", "peak"),
        ("2026-03-02T18:00:00", "offpeak"),
        ("2026-03-07T12:00:00", "offpeak"),  # Saturday
        ("2026-03-30T08:00:00", "peak"),  # Monday after the spring DST change (UTC+2)
        ("2026-03-30T07:30:00", "offpeak"),
    ],
)
def test_period_of_an_instant_is_local_wall_clock(wall: str, period: str) -> None:
    assert BUSINESS.at(berlin_ms(wall)) == period


def test_segments_cut_at_local_boundaries_around_dst() -> None:
    # 2026-03-30 is the first Monday of summer time: peak starts at 06:00 UTC, not 07:00
    start, end = berlin_ms("2026-03-30T07:00:00"), berlin_ms("2026-03-30T19:00:00")
    assert BUSINESS.segments(start, end) == [
        (start, berlin_ms("2026-03-30T08:00:00"), "offpeak"),
        (berlin_ms("2026-03-30T08:00:00"), berlin_ms("2026-03-30T18:00:00"), "peak"),
        (berlin_ms("2026-03-30T18:00:00"), end, "offpeak"),
    ]
    assert berlin_ms("2026-03-30T08:00:00") % 86_400_000 == 6 * 3600 * 1000


def test_an_edge_inside_the_spring_forward_gap_takes_effect_at_the_jump() -> None:
    # Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; the edge 02:30 never
    # happens on the wall clock, so the period changes at the jump itself
    every_day = parse_days("mon-sun")
    periods = Periods(BERLIN, (Window("a", every_day, 0, parse_clock("02:30")),), "b")
    jump = 1774746000000  # 2026-03-29T01:00:00Z
    assert periods.segments(jump - 30_000, jump + 30_000) == [
        (jump - 30_000, jump, "a"),
        (jump, jump + 30_000, "b"),
    ]


def test_a_repeated_wall_clock_hour_cuts_twice() -> None:
    # Sunday 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:00-02:30 local
    # happens twice (00:00-00:30 UTC and 01:00-01:30 UTC)
    every_day = parse_days("mon-sun")
    periods = Periods(BERLIN, (Window("a", every_day, 2 * 3600, parse_clock("02:30")),), "b")
    hour = 3_600_000
    midnight = 1792886400000  # 2026-10-25T00:00:00Z = 02:00 CEST
    assert periods.segments(midnight - hour, midnight + 2 * hour) == [
        (midnight - hour, midnight, "b"),
        (midnight, midnight + hour // 2, "a"),
        (midnight + hour // 2, midnight + hour, "b"),
        (midnight + hour, midnight + 3 * hour // 2, "a"),
        (midnight + 3 * hour // 2, midnight + 2 * hour, "b"),
    ]


def test_days_and_clock_parsing() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat, sun,mon") == frozenset({5, 6, 0})
    assert parse_clock("24:00") == 86400
    assert parse_clock("17:30:15") == 63015
    for bad in ("fri-mon", "monday", ""):
        with pytest.raises(ValueError):
            parse_days(bad)
    for bad in ("24:01", "8:00", "12:60"):
        with pytest.raises(ValueError):
            parse_clock(bad)
