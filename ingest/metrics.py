"""Hook counters and the latency histogram, rendered as Prometheus text (format 0.0.4).

Updates are plain dict/list increments (called on the event loop, on the hook
path); rendering happens only when /metrics is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class HookMetrics:
    """``wcs_hooks_total{method,outcome}`` and ``wcs_hook_latency_seconds``. Not thread-safe."""

    __slots__ = ("_buckets", "_count", "_sum", "hooks")

    def __init__(self) -> None:
        self.hooks: dict[tuple[str, str], int] = {}
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # last one: above every bound
        self._sum = 0.0
        self._count = 0

    def count(self, method: str, outcome: str) -> None:
        key = (method, outcome)
        self.hooks[key] = self.hooks.get(key, 0) + 1

    def observe(self, seconds: float) -> None:
        """One hook answered ``seconds`` after it was received."""
        self._buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sum += seconds
        self._count += 1

    def render(self, queue_depth: int) -> str:
        lines = [
            "# HELP wcs_hooks_total WCS REST hook calls by method and outcome.",
            "# TYPE wcs_hooks_total counter",
        ]
        for (method, outcome), value in sorted(self.hooks.items()):
            lines.append(
                f'wcs_hooks_total{{method="{_label(method)}",outcome="{_label(outcome)}"}} {value}'
            )
        lines += [
            "# HELP wcs_hook_latency_seconds Time from receiving a hook to answering it.",
            "# TYPE wcs_hook_latency_seconds histogram",
        ]
        cumulative = 0
        for bound, hits in zip((*LATENCY_BUCKETS, None), self._buckets, strict=True):
            cumulative += hits
            le = "+Inf" if bound is None else repr(bound)
            lines.append(f'wcs_hook_latency_seconds_bucket{{le="{le}"}} {cumulative}')
        lines += [
            f"wcs_hook_latency_seconds_sum {self._sum!r}",
            f"wcs_hook_latency_seconds_count {self._count}",
            "# HELP wcs_ingest_queue_depth Envelopes accepted but not yet consumed.",
            "# TYPE wcs_ingest_queue_depth gauge",
            f"wcs_ingest_queue_depth {queue_depth}",
        ]
        return "\n".join(lines) + "\n"
