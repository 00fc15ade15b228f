"""``rate(session, deck)`` against hand-computed costs (docs/rating.md has the same cases)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sinks.rating.deck import Deck, Revision
from sinks.rating.periods import Periods, Window, parse_clock, parse_days
from sinks.rating.rate import RatedLine, Session, Unrated, rate
from tests.unit.rating_decks import BERLIN, BUSINESS, FLAT, berlin_ms, call, call_rate, deck_of

S = 1000
D = Decimal


def cost(session: Session, deck: Deck) -> str:
    line = rate(session, deck)
    assert isinstance(line, RatedLine), line
    return str(line.cost)


@pytest.mark.parametrize(
    ("talk_ms", "expected"),
    [
        (0, "0.10"),  # answered, 0 s: nothing billed, the connect fee stays
        (1, "0.70"),  # 60 s x 0.01/s + 0.10
        (59_999, "0.70"),
        (60_000, "0.70"),
        (60_001, "0.76"),  # 66 s
        (66_000, "0.76"),
        (66_001, "0.82"),  # 72 s
    ],
)
def test_tier_boundaries_with_a_connect_fee(talk_ms: int, expected: str) -> None:
    deck = deck_of(call_rate("0.60", "60:60, 6", connect_fee=D("0.10")))
    assert cost(call(talk_ms), deck) == expected


def test_half_a_unit_per_minute_for_60_seconds_is_exactly_half() -> None:
    deck = deck_of(call_rate("0.5", "1/1"), decimals=4)
    assert cost(call(60 * S), deck) == "0.5000"
    one = rate(call(7 * S), deck)  # 7 s x 0.5 / 60 = 0.058333.. -> 0.0583, rounded once
    assert isinstance(one, RatedLine) and str(one.cost) == "0.0583"
    many = sum((one.cost for _ in range(1000)), D(0))
    assert many == 1000 * one.cost == D("58.3")


@pytest.mark.parametrize(
    ("talk_ms", "expected"),
    [
        (30 * S, "1.00"),
        (60 * S, "1.00"),
        (100 * S, "1.00"),
        (101 * S, "1.01"),
        (120 * S, "1.20"),
        (200 * S, "1.50"),
        (3600 * S, "1.50"),
    ],
)
def test_minimum_and_maximum_cost(talk_ms: int, expected: str) -> None:
    rule = call_rate("0.60", "1/1", min_cost=D("1.00"), max_cost=D("1.50"))
    assert cost(call(talk_ms), deck_of(rule)) == expected


@pytest.mark.parametrize(
    ("talk_ms", "expected"), [(0, "0.00"), (2_999, "0.00"), (3_000, "0.80"), (3_001, "0.80")]
)
def test_no_charge_threshold_drops_fees_and_minimum(talk_ms: int, expected: str) -> None:
    rule = call_rate("0.60", "60/6", connect_fee=D("0.20"), min_cost=D("0.50"), no_charge_ms=3_000)
    assert cost(call(talk_ms), deck_of(rule)) == expected


def test_an_unanswered_call_costs_its_attempt_fee_only() -> None:
    rule = call_rate("0.60", connect_fee=D("0.10"), attempt_fee=D("0.03"), min_cost=D("1"))
    assert cost(call(None), deck_of(rule)) == "0.03"
    assert cost(call(60 * S), deck_of(rule)) == "1.00"  # 0.03 + 0.10 + 0.60, raised to 1
    assert cost(call(None), deck_of(call_rate())) == "0.00"
    unanswered, short = rate(call(None), deck_of(rule)), rate(call(1), deck_of(rule))
    assert isinstance(unanswered, RatedLine) and isinstance(short, RatedLine)
    assert (unanswered.attempt_fee, unanswered.connect_fee) == (D("0.03"), D(0))  # as charged
    assert (short.attempt_fee, short.connect_fee) == (D("0.03"), D("0.10"))


def test_longest_prefix_then_app_key_then_direction() -> None:
    deck = deck_of(
        call_rate("0.10", "1/1", rate_id="any"),
        call_rate("0.20", "1/1", rate_id="de", prefix="49"),
        call_rate("0.30", "1/1", rate_id="de-mobile", prefix="4915"),
        call_rate("0.40", "1/1", rate_id="de-in", prefix="49", direction="incoming"),
        call_rate("0.50", "1/1", rate_id="vip", app_key="vip"),
    )
    cases = [
        ("+49 151 1234567", "A", "outgoing", "de-mobile", "4915"),
        ("sip:0049301234@pbx.example", "A", "outgoing", "de", "49"),
        ("+49301234", "A", "incoming", "de-in", "49"),
        ("+4915112", "A", "incoming", "de-mobile", "4915"),  # longer prefix beats direction
        ("+33 1 2345", "A", "outgoing", "any", ""),
        ("+4915112", "vip", "outgoing", "vip", ""),  # an exact app_key beats any prefix
    ]
    for number, app, direction, rate_id, prefix in cases:
        line = rate(call(60 * S, number=number, app=app, direction=direction), deck)
        assert isinstance(line, RatedLine)
        assert (line.rate.rate_id, line.rate.prefix) == (rate_id, prefix), number


def test_incoming_and_outgoing_prices() -> None:
    deck = deck_of(
        call_rate("0.00", "1/1", direction="incoming"),
        call_rate("0.60", "1/1", direction="outgoing"),
    )
    assert cost(call(60 * S, direction="incoming"), deck) == "0.00"
    assert cost(call(60 * S, direction="outgoing"), deck) == "0.60"
    assert isinstance(rate(call(60 * S, direction=""), deck), Unrated)


def test_peak_offpeak_crossing_is_split_by_increment_start() -> None:
    rule = call_rate("0", "60:60, 6", prices={"peak": D("0.60"), "offpeak": D("0.30")})
    deck = deck_of(rule, periods=BUSINESS)
    # Monday 17:59:30 local, 90 s: the first 60 s increment starts in peak (0.60), the five
    # 6 s increments from 18:00:30 in off-peak (30 s x 0.005 = 0.15)
    line = rate(call(90 * S, berlin_ms("2026-03-02T17:59:30")), deck)
    assert isinstance(line, RatedLine)
    assert line.usage == ((1, "peak", 60), (2, "offpeak", 30))
    assert str(line.cost) == "0.75"
    # 1/1 steps: 30 s peak + 60 s off-peak
    per_second = deck_of(call_rate("0", "1/1", prices=rule.prices), periods=BUSINESS)
    assert cost(call(90 * S, berlin_ms("2026-03-02T17:59:30")), per_second) == "0.60"


def test_peak_boundary_on_the_first_summer_time_day() -> None:
    # Monday 2026-03-30 (UTC+2 since Sunday): peak starts 08:00 local = 06:00 UTC. A call
    # answered 07:59:40 local for 40 s: 20 s off-peak, 20 s peak.
    rule = call_rate("0", "1/1", prices={"peak": D("0.60"), "offpeak": D("0.30")})
    deck = deck_of(rule, periods=BUSINESS)
    line = rate(call(40 * S, berlin_ms("2026-03-30T07:59:40")), deck)
    assert isinstance(line, RatedLine)
    assert line.usage == ((1, "offpeak", 20), (1, "peak", 20))
    assert str(line.cost) == "0.30"  # 20 x 0.005 + 20 x 0.01


def test_revision_in_force_at_answer_time() -> None:
    switch = berlin_ms("2026-07-01T00:00:00")
    deck = Deck(
        (
            Revision("2026-01", berlin_ms("2026-01-01T00:00:00"), (call_rate("0.60", "1/1"),)),
            Revision("2026-07", switch, (call_rate("1.20", "1/1"),)),
        ),
        FLAT,
    )
    before, at = rate(call(60 * S, switch - 1), deck), rate(call(60 * S, switch), deck)
    assert isinstance(before, RatedLine) and isinstance(at, RatedLine)
    assert (before.revision_id, str(before.cost)) == ("2026-01", "0.60")
    assert (at.revision_id, str(at.cost)) == ("2026-07", "1.20")
    # created before the switch, answered after it: the answer decides
    late = Session(
        "c", "call", "A", "outgoing", "", switch - 60_000, switch + 1, switch + 60_001, 60_000
    )
    assert isinstance(line := rate(late, deck), RatedLine) and line.revision_id == "2026-07"
    # never answered: its creation decides
    attempt = Session("c", "call", "A", "outgoing", "", switch - 1, None, switch + 5_000)
    assert isinstance(line := rate(attempt, deck), RatedLine) and line.revision_id == "2026-01"
    early = rate(call(60 * S, berlin_ms("2025-12-31T23:59:59")), deck)
    assert isinstance(early, Unrated)
    assert early.reason == "no revision in force at 2025-12-31T22:59:59.000+00:00"


def test_unrated_sessions_say_why() -> None:
    deck = deck_of(call_rate(prefix="49"))
    open_call = Session("c", "call", "A", "outgoing", "+49", 0, 1, None)
    assert rate(open_call, deck) == Unrated(open_call, "open")
    foreign = call(60 * S, number="+33 1")
    assert rate(foreign, deck) == Unrated(
        foreign, "no call rate in r1: app_key 'A', direction 'outgoing', number '331'"
    )
    message = Session("m", "message", "A", "outgoing", "", 0, 0, 0)
    assert rate(message, deck) == Unrated(
        message, "no message rate in r1: app_key 'A', direction 'outgoing'"
    )


def test_streams_and_messages() -> None:
    publish = call_rate("0.006", "1/1", product="publish", rate_id="pub")
    sms = call_rate("0.03", "1", product="message", rate_id="sms", unit_s=1, connect_fee=D("0.01"))
    deck = deck_of(publish, sms, decimals=4)
    start = berlin_ms("2026-03-02T10:00:00")
    stream = Session("p1", "publish", "A", "", "", start, start, start + 300_500, 300_500)
    line = rate(stream, deck)
    assert isinstance(line, RatedLine)
    assert (line.billed_seconds, str(line.cost)) == (301, "0.0301")  # 301 s x 0.0001
    message = Session("m1", "message", "A", "outgoing", "", start, start, start)
    assert cost(message, deck) == "0.0400"


def test_a_call_over_the_fall_back_night_pays_night_day_night() -> None:
    # every day, night is 00:00-02:30 local. Sunday 2026-10-25 03:00 CEST falls back to
    # 02:00 CET at 01:00 UTC. A one-hour call answered at 00:20 UTC (02:20 CEST): 10 min
    # night (to 02:30 CEST), 30 min day (02:30-03:00 CEST), 20 min night again (02:00-02:20
    # CET). At 0.60/min night and 1.20/min day: 30 x 0.60 + 30 x 1.20 = 54.00.
    night = Window("night", parse_days("mon-sun"), 0, parse_clock("02:30"))
    rule = call_rate("0", "1/1", prices={"night": D("0.60"), "day": D("1.20")})
    deck = deck_of(rule, periods=Periods(BERLIN, (night,), "day"))
    answered = berlin_ms("2026-10-25T02:20:00")  # fold 0: the first 02:20, CEST
    assert answered == 1792887600000  # 2026-10-25T00:20:00Z
    line = rate(call(3600 * S, answered), deck)
    assert isinstance(line, RatedLine)
    assert line.usage == ((1, "night", 600), (1, "day", 1800), (1, "night", 1200))
    assert str(line.cost) == "54.00"


def test_a_call_over_the_spring_forward_jump_is_priced_by_wall_clock() -> None:
    # Sunday 2026-03-29 02:00 CET jumps to 03:00 CEST at 01:00 UTC. Night until 02:30 never
    # reaches 02:30 on the wall clock: a call answered 01:50 CET (00:50 UTC) for 20 min has
    # 10 min of night, then day from the jump (03:00 CEST) on.
    night = Window("night", parse_days("mon-sun"), 0, parse_clock("02:30"))
    rule = call_rate("0", "60/6", prices={"night": D("0.60"), "day": D("1.20")})
    deck = deck_of(rule, periods=Periods(BERLIN, (night,), "day"))
    line = rate(call(1200 * S, berlin_ms("2026-03-29T01:50:00")), deck)
    assert isinstance(line, RatedLine)
    assert line.usage == ((1, "night", 60), (2, "night", 540), (2, "day", 600))
    assert str(line.cost) == "18.00"  # 600 s x 0.01 + 600 s x 0.02
