"""KeyFilter (the state store's "maybe stored?" Bloom filter): never a false negative, a
false-positive rate near the configured one, bounded as it grows past its capacity."""

from __future__ import annotations

import pytest

from sinks.key_filter import KeyFilter

PROBES = 50_000


def fp_rate(keys: KeyFilter, family: str = "call", prefix: str = "absent") -> float:
    return sum(keys.might_contain(family, f"{prefix}-{i}") for i in range(PROBES)) / PROBES


def test_no_false_negatives_and_the_configured_rate_at_capacity() -> None:
    keys = KeyFilter(capacity=100_000, error_rate=0.01)
    for i in range(100_000):
        keys.add("call", f"key-{i}")
    assert all(keys.might_contain("call", f"key-{i}") for i in range(100_000))
    assert 0.005 < fp_rate(keys) < 0.015
    assert 0.005 < fp_rate(keys, "stream", "key") < 0.015  # the family is part of the key
    assert keys.nbytes < 130_000  # ~9.6 bits per key at 1 %


def test_grows_beyond_capacity_with_a_bounded_rate() -> None:
    keys = KeyFilter(capacity=1000, error_rate=0.01)
    initial = keys.nbytes
    for i in range(20_000):
        keys.add("connection", f"node/{i}")
    assert keys.nbytes > 20 * initial  # it grew (filters of 2x capacity, tighter rates)
    assert all(keys.might_contain("connection", f"node/{i}") for i in range(20_000))
    assert fp_rate(keys, "connection") < 2 * 0.01  # not one error rate per added filter
    assert 19_500 < len(keys) <= 20_000  # keys that test positive already are not counted


@pytest.mark.parametrize("error_rate", [0.1, 0.001])
def test_small_filters_keep_their_rate(error_rate: float) -> None:
    keys = KeyFilter(capacity=2000, error_rate=error_rate)
    for i in range(2000):
        keys.add("stream", f"ms-{i}")
    assert fp_rate(keys, "stream") < 1.5 * error_rate


def test_empty_and_repeated_keys() -> None:
    keys = KeyFilter(capacity=100)
    assert not keys.might_contain("call", "x") and len(keys) == 0
    for _ in range(3):
        keys.add("call", "x")
    assert keys.might_contain("call", "x") and len(keys) == 1


def test_dump_and_load_give_the_same_answers() -> None:
    """``replay --jobs`` hands the filter to its part processes as plain data."""
    keys = KeyFilter(capacity=1000, error_rate=0.01)
    for i in range(4000):  # three filters: 1000 + 2000 + 4000 keys
        keys.add("call", f"key-{i}")
    copy = KeyFilter.load(keys.dump())
    assert len(copy._filters) == len(keys._filters) == 3 and len(copy) == len(keys)
    assert all(copy.might_contain("call", f"key-{i}") for i in range(4000))
    probes = [f"absent-{i}" for i in range(5000)]
    assert [copy.might_contain("call", k) for k in probes] == [
        keys.might_contain("call", k) for k in probes
    ]
    copy.add("call", "new")  # the copy grows on its own
    assert copy.might_contain("call", "new")
