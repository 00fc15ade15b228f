"""Freshness: how long after WCS called the hook its ``events`` row was in ClickHouse.

The age of every ``events`` row when the insert that carried it returned (wall
clock now minus the row's ``received_at``, the ingest's receive time), in one
histogram per writer: ``wcs_sink_freshness_seconds`` on the ``run`` service's
/metrics, and a ``freshness`` log line of the Kafka worker's sink
(``processors/faust_sink.py``). On live traffic this is the end-to-end latency
hook -> queryable row; on a replay of recorded envelopes it is the age of the
recording and says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from events.histogram import Histogram, quantile

NAME = "wcs_sink_freshness_seconds"
HELP = "Time from receiving a hook to its events row being inserted into ClickHouse."
# seconds; fine enough (<= 1.5x apart) for p50/p95 from the buckets
BOUNDS_S = (
    0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3,
    0.4, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
    120.0,
)  # fmt: skip


def histogram() -> Histogram:
    return Histogram(BOUNDS_S)


def observe_rows(hist: Histogram, rows: Iterable[dict[str, Any]], now_ms: int) -> None:
    """Ages of ``events`` rows inserted at ``now_ms`` (clamped at 0 for clock skew)."""
    observe_times(hist, (int(row["received_at"]) for row in rows), now_ms)


def observe_times(hist: Histogram, received_at: Iterable[int], now_ms: int) -> None:
    """Ages of ``events`` rows (their ``received_at``) inserted at ``now_ms``."""
    for t in received_at:
        hist.observe(max(0, now_ms - t) / 1000)


def summary(counts: Sequence[int]) -> dict[str, Any]:
    """n and p50/p95/p99 in ms (bucket-interpolated) of per-bucket ``counts``."""
    out: dict[str, Any] = {"n": sum(counts)}
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        value = quantile(BOUNDS_S, counts, q)
        out[name] = None if value is None else round(value * 1000, 1)
    return out
