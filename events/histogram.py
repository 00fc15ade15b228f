"""A fixed-bucket histogram (Prometheus text format) and quantiles estimated from its buckets.

Used for the hook latency (ingest) and the sink's freshness (hook received -> row
inserted). Observing is one bisect and two additions; nothing here does IO.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence


class Histogram:
    """Counts per bucket ``value <= bound``, the last one above every bound. Not thread-safe."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bounds must be strictly increasing")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def render(self, name: str, help_text: str) -> list[str]:
        """The Prometheus exposition lines of this histogram."""
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, hits in zip((*self.bounds, None), self.counts, strict=True):
            cumulative += hits
            le = "+Inf" if bound is None else repr(bound)
            lines.append(f'{name}_bucket{{le="{le}"}} {cumulative}')
        lines += [f"{name}_sum {self.sum!r}", f"{name}_count {self.count}"]
        return lines


def quantile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of bucket ``counts`` (per bucket, not cumulative; one more
    than ``bounds``), interpolated linearly inside its bucket as Prometheus'
    ``histogram_quantile`` does (the first bucket starts at 0). None without observations;
    the highest bound when the quantile falls above it."""
    if len(counts) != len(bounds) + 1:
        raise ValueError("need one count per bound plus the overflow bucket")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, hits in enumerate(counts):
        if hits and seen + hits >= rank:
            if i == len(bounds):
                return float(bounds[-1])
            low = 0.0 if i == 0 else float(bounds[i - 1])
            return low + (float(bounds[i]) - low) * (rank - seen) / hits
        seen += hits
    return float(bounds[-1])


def minus(later: Sequence[int], earlier: Sequence[int]) -> list[int]:
    """Bucket counts observed between two snapshots of the same histogram."""
    if len(later) != len(earlier):
        raise ValueError("snapshots of different histograms")
    return [a - b for a, b in zip(later, earlier, strict=True)]
