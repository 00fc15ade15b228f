"""Read-side time parameters: parsed exactly, bounded to 1970..2100, ranges limited."""

from __future__ import annotations

import pytest

from sinks.timerange import MAX_MS, MAX_RANGE_MS, check_range, parse_time


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("1767225600000", 1_767_225_600_000),
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600_000),
        ("2026-01-01", 1_767_225_600_000),
        ("2100-01-01T00:00:00Z", MAX_MS),
    ],
)
def test_accepted(text: str, ms: int) -> None:
    assert parse_time(text) == ms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "out of range"),
        ("4102444800001", "out of range"),
        ("9" * 30, "not a time"),  # too many digits to be epoch ms
        ("1969-12-31T23:59:59Z", "out of range"),
        ("9999-12-31", "out of range"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
        ("yesterday", "not a time"),
        ("", "not a time"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text)


def test_ranges() -> None:
    check_range(0, MAX_RANGE_MS)
    with pytest.raises(ValueError, match="empty"):
        check_range(5, 5)
    with pytest.raises(ValueError, match="longer than 400 days"):
        check_range(0, MAX_RANGE_MS + 1)
