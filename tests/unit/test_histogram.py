"""events/histogram.py and sinks/freshness.py: buckets, quantiles, freshness of inserted rows."""

from __future__ import annotations

import pytest

from events.histogram import Histogram, minus, quantile
from sinks import freshness


def test_buckets_are_inclusive_and_rendered_cumulative() -> None:
    h = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 3.0):
        h.observe(value)
    assert h.counts == [2, 1, 1]
    assert h.render("x", "help") == [
        "# HELP x help",
        "# TYPE x histogram",
        'x_bucket{le="1.0"} 2',
        'x_bucket{le="2.0"} 3',
        'x_bucket{le="+Inf"} 4',
        "x_sum 6.0",
        "x_count 4",
    ]


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError):
        Histogram((2.0, 1.0))


def test_quantile_interpolates_inside_the_bucket() -> None:
    bounds = (10.0, 20.0, 40.0)
    # 4 in (0,10], 4 in (10,20], 2 in (20,40]
    counts = [4, 4, 2, 0]
    assert quantile(bounds, counts, 0.5) == pytest.approx(12.5)  # rank 5: 1 of 4 into (10,20]
    assert quantile(bounds, counts, 0.2) == pytest.approx(5.0)
    assert quantile(bounds, counts, 0.9) == pytest.approx(30.0)  # rank 9: half of (20,40]
    assert quantile(bounds, [0, 0, 0, 0], 0.5) is None
    assert quantile(bounds, [0, 0, 0, 3], 0.5) == 40.0  # above every bound: the last bound
    with pytest.raises(ValueError):
        quantile(bounds, [1, 2], 0.5)


def test_minus_gives_the_window_between_two_snapshots() -> None:
    assert minus([5, 7, 1], [2, 7, 0]) == [3, 0, 1]
    with pytest.raises(ValueError):
        minus([1], [1, 2])


def test_freshness_observes_row_ages_at_insert_time() -> None:
    h = freshness.histogram()
    rows = [{"received_at": 1_000}, {"received_at": 1_900}, {"received_at": 2_100}]
    freshness.observe_rows(h, rows, now_ms=2_000)  # ages 1 s, 0.1 s, -0.1 s -> 0
    assert h.count == 3
    assert h.sum == pytest.approx(1.1)
    summary = freshness.summary(h.counts)
    assert summary["n"] == 3
    assert 75 <= summary["p50_ms"] <= 100  # the 0.1 s row's bucket (0.075, 0.1]
    assert 750 < summary["p99_ms"] <= 1000
