"""Hook counters and the latency histogram, rendered as Prometheus text (format 0.0.4).

Updates are plain dict/list increments (called on the event loop, on the hook
path); rendering happens only when /metrics is scraped.
"""

from __future__ import annotations

from typing import Final

from events.histogram import Histogram

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


def label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class HookMetrics:
    """``wcs_hooks_total{method,outcome}`` and ``wcs_hook_latency_seconds``. Not thread-safe."""

    __slots__ = ("hooks", "latency")

    def __init__(self) -> None:
        self.hooks: dict[tuple[str, str], int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)

    def count(self, method: str, outcome: str) -> None:
        key = (method, outcome)
        self.hooks[key] = self.hooks.get(key, 0) + 1

    def observe(self, seconds: float) -> None:
        """One hook answered ``seconds`` after it was received."""
        self.latency.observe(seconds)

    def render(self, queue_depth: int) -> str:
        lines = [
            "# HELP wcs_hooks_total WCS REST hook calls by method and outcome.",
            "# TYPE wcs_hooks_total counter",
        ]
        for (method, outcome), value in sorted(self.hooks.items()):
            labels = f'method="{label_value(method)}",outcome="{label_value(outcome)}"'
            lines.append(f"wcs_hooks_total{{{labels}}} {value}")
        lines += self.latency.render(
            "wcs_hook_latency_seconds", "Time from receiving a hook to answering it."
        )
        lines += [
            "# HELP wcs_ingest_queue_depth Envelopes accepted but not yet consumed.",
            "# TYPE wcs_ingest_queue_depth gauge",
            f"wcs_ingest_queue_depth {queue_depth}",
        ]
        return "\n".join(lines) + "\n"
