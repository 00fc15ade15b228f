"""The A/B billing rule per call (sinks/exports/rounding.py), hand-computed."""

from __future__ import annotations

import pytest

from sinks.exports.rounding import Rounding, billable_seconds, parse_rounding

S = 1000  # ms per second

# (rule, talk_ms, billable seconds): 0 s, 1 ms, 1 s, exactly A, A + 1 ms, A + 1 s, ...
CASES = [
    ("1/1", 0, 0),
    ("1/1", 1, 1),
    ("1/1", 1 * S, 1),
    ("1/1", 1 * S + 1, 2),
    ("1/1", 61 * S, 61),
    ("1/1", 61 * S + 500, 62),
    ("6/6", 0, 0),
    ("6/6", 1 * S, 6),
    ("6/6", 6 * S, 6),
    ("6/6", 6 * S + 1, 12),
    ("6/6", 7 * S, 12),
    ("6/6", 12 * S, 12),
    ("6/6", 13 * S, 18),
    ("30/6", 0, 0),
    ("30/6", 1 * S, 30),
    ("30/6", 30 * S, 30),
    ("30/6", 30 * S + 1, 36),
    ("30/6", 31 * S, 36),
    ("30/6", 36 * S, 36),
    ("30/6", 37 * S, 42),
    ("60/6", 0, 0),
    ("60/6", 1, 60),
    ("60/6", 1 * S, 60),
    ("60/6", 60 * S, 60),
    ("60/6", 60 * S + 1, 66),
    ("60/6", 61 * S, 66),
    ("60/6", 66 * S, 66),
    ("60/6", 67 * S, 72),
    ("60/6", 3600 * S, 3600),
    ("60/60", 0, 0),
    ("60/60", 1 * S, 60),
    ("60/60", 60 * S, 60),
    ("60/60", 61 * S, 120),
    ("60/60", 120 * S, 120),
    ("60/60", 121 * S, 180),
    ("60/6", -5 * S, 0),
]


@pytest.mark.parametrize(("rule", "talk_ms", "expected"), CASES)
def test_billable_seconds(rule: str, talk_ms: int, expected: int) -> None:
    assert billable_seconds(talk_ms, parse_rounding(rule)) == expected


def test_rounding_applies_per_call_never_on_the_sum() -> None:
    rule = parse_rounding("60/6")
    calls = [1 * S, 1 * S, 61 * S]  # 60 + 60 + 66
    assert sum(billable_seconds(t, rule) for t in calls) == 186
    assert billable_seconds(sum(calls), rule) == 66  # what rounding the sum would wrongly give


@pytest.mark.parametrize(
    ("text", "expected"), [("60/6", Rounding(60, 6)), (" 1/1 ", Rounding(1, 1))]
)
def test_parse_rounding(text: str, expected: Rounding) -> None:
    assert parse_rounding(text) == expected
    assert str(expected) == text.strip()


@pytest.mark.parametrize("text", ["60", "0/6", "60/0", "60/-6", "a/b", "60/6/1", ""])
def test_parse_rounding_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="A/B"):
        parse_rounding(text)
