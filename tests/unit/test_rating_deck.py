"""Loading and validating a deck (sinks/rating/load.py): every problem names file:line: field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sinks.rating.load import DeckError, load_deck, parse_deck
from sinks.rating.tiers import parse_tiers

DECK = """[deck]
currency = "EUR"
decimals = 3
rounding = "half_even"
timezone = "Europe/Berlin"
default_period = "offpeak"

[[period]]
name = "peak"
days = "mon-fri"
from = "08:00"
to = "18:00"
"""
REVISION = """[revision]
id = "r1"
effective_from = "2026-01-01T00:00:00"
csv = ["calls.csv"]

[[rate]]
product = "call"
price = { peak = "0.10", offpeak = "0.05" }
increments = "60/6"

[[rate]]
id = "sms"
product = "message"
price = "0.03"
"""
CSV = """# a comment line
id,product,prefix,price_peak,price_offpeak,increments,max_cost,currency
mobile,call,+4915,0.20,0.10,1/1,5,USD
"""


def texts(**changes: str) -> dict[str, str]:
    files = {"deck.toml": DECK, "r1.toml": REVISION, "calls.csv": CSV}
    return files | {name.replace("_", ".", 1): text for name, text in changes.items()}


def problems(**changes: str) -> list[str]:
    with pytest.raises(DeckError) as caught:
        parse_deck(texts(**changes))
    return caught.value.problems


def test_a_valid_deck() -> None:
    deck = parse_deck(texts())
    assert (deck.decimals, deck.rounding, deck.periods.default) == (3, "half_even", "offpeak")
    (revision,) = deck.revisions
    assert revision.effective_from_ms == 1767222000000  # midnight in Berlin = 23:00 UTC
    default, sms, mobile = revision.rates
    assert default.rate_id == "r1.toml:6" and default.tiers == parse_tiers("60/6")
    assert default.prices == {"peak": Decimal("0.10"), "offpeak": Decimal("0.05")}
    assert (sms.unit_s, sms.prices["peak"], sms.currency) == (1, Decimal("0.03"), "EUR")
    assert (mobile.rate_id, mobile.prefix, mobile.currency) == ("mobile", "4915", "USD")
    assert mobile.max_cost == Decimal(5) and mobile.source == "calls.csv:3"
    assert len(deck.digest) == 64 and parse_deck(texts()).digest == deck.digest
    assert parse_deck(texts(calls_csv=CSV + "\n")).digest != deck.digest


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"deck_toml": DECK.replace('"EUR"', '"euro"')}, "deck.toml:2: currency: "),
        ({"deck_toml": DECK.replace("decimals = 3", "decimals = 12")}, "deck.toml:3: decimals: "),
        ({"deck_toml": DECK.replace("half_even", "banker")}, "deck.toml:4: rounding: "),
        ({"deck_toml": DECK.replace("Europe/Berlin", "Mars/Base")}, "deck.toml:5: timezone: "),
        ({"deck_toml": DECK.replace('"18:00"', '"07:00"')}, "deck.toml:12: to: must be after"),
        ({"deck_toml": DECK.replace("mon-fri", "fri-mon")}, "deck.toml:10: days: "),
        (
            {
                "deck_toml": DECK + '[[period]]\nname = "lunch"\ndays = "mon"\nfrom = "12:00"\n'
                'to = "13:00"\n'
            },
            "deck.toml:16: from: overlaps a peak window",
        ),
        ({"deck_toml": DECK + "[x\n"}, "deck.toml:13: not valid TOML"),
        ({"r1_toml": REVISION.replace('id = "r1"', 'id = ""')}, "r1.toml:2: id: "),
        ({"r1_toml": REVISION.replace("2026-01-01T00:00:00", "soon")}, "r1.toml:3: effective_from"),
        ({"r1_toml": REVISION.replace('"message"', '"fax"')}, "r1.toml:13: product: "),
        (
            {"r1_toml": REVISION.replace('"0.03"', "0.03")},
            "r1.toml:14: price: amounts are written as text",
        ),
        ({"r1_toml": REVISION.replace('"60/6"', '"60:7, 6"')}, "r1.toml:9: increments: "),
        (
            {"r1_toml": REVISION.replace(', offpeak = "0.05"', "")},
            "r1.toml:8: price: price per period needs ['offpeak', 'peak']",
        ),
        ({"r1_toml": REVISION + 'colour = "red"\n'}, "r1.toml:15: colour: unknown field"),
        ({"r1_toml": REVISION.replace('csv = ["calls.csv"]', "")}, "calls.csv:1: no revision"),
        (
            {"r1_toml": REVISION + 'no_charge_below = "2"\n'},
            "r1.toml:15: no_charge_below: messages have no duration",
        ),
        ({"calls_csv": CSV + "x,call,,1,1\n"}, "calls.csv:4: 5 cells, header has 8"),
        ({"calls_csv": CSV + "x,call,+1,1,1,1,2,usd\n"}, "calls.csv:4: currency: "),
        ({"calls_csv": CSV + "x,call,+1,1,1,1,-2,USD\n"}, "calls.csv:4: max_cost: not a non-neg"),
        ({"calls_csv": CSV + "x,message,+1,1,1,,,\n"}, "calls.csv:4: prefix: only call rates"),
        (
            {"calls_csv": CSV + "again,call,0049 15,1,1,1/1,,\n"},
            "calls.csv:4: prefix: same product, app_key, direction and prefix as calls.csv:3",
        ),
        (
            {"r2_toml": REVISION.replace('"r1"', '"r2"').replace('csv = ["calls.csv"]', "")},
            "r2.toml:1: effective_from: same effective_from as r1.toml",
        ),
    ],
)
def test_problems_name_file_line_and_field(changes: dict[str, str], expected: str) -> None:
    found = problems(**changes)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        deck_toml=DECK.replace("half_even", "x"), r1_toml=REVISION.replace('"call"', '"c"')
    )
    assert len(found) == 2


def test_the_example_deck_in_deploy_loads() -> None:
    deck = load_deck(Path(__file__).parents[2] / "deploy" / "rates")
    assert [r.revision_id for r in deck.revisions] == ["2026-01", "2026-07"]
    assert all(r.rates for r in deck.revisions)
    with pytest.raises(DeckError, match="not a directory"):
        load_deck(Path(__file__).parent / "no-such-deck")
