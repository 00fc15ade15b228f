"""Simulation knobs (``SimConfig``) and the hook type the generator produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Hook = tuple[int, str, dict[str, Any]]
"""One WCS callback as it arrives: (received_at epoch ms, method name, raw JSON body)."""

# Processor time-outs the ground truth assumes (the service's defaults).
KEEPALIVE_TIMEOUT_FACTOR = 3  # a stream with no keep-alive for 3 intervals is closed
CALL_SETUP_TIMEOUT_MS = 5 * 60_000
CALL_IDLE_TIMEOUT_MS = 12 * 3600_000
GAP_FACTOR = 1.5  # a keep-alive gap is longer than 1.5 intervals
REORDER_WINDOW_MS = 50  # only hooks of one entity closer than this are swapped
RETRY_DELAY_MS = (3, 1000)  # a WCS retry arrives this much after the original
TAIL_MARGIN_MS = 15_000  # traffic continues this long past a silent stream's timeout
LATE_WINDOW_MS = 4 * 60_000  # open calls are created within this window before the end
MIN_DURATION_MS = 6 * 60_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes a trace; ``generate`` is a pure function of it.

    Counts are entities (not hooks). Rates are probabilities in [0, 1]:
    ``duplicate_rate`` per hook (a WCS retry, same body, arriving later),
    ``reorder_rate`` per adjacent pair of one entity's hooks closer than 50 ms,
    ``missing_end_rate`` per connection, call and stream (no terminal event),
    ``gap_rate`` per live stream (one keep-alive missing, so one gap).
    """

    seed: int = 1
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    duration_ms: int = 10 * 60_000
    connections: int = 40
    calls: int = 60
    publishers: int = 30
    viewers: int = 40
    messages: int = 40
    data_ops: int = 20
    errors: int = 3
    app_keys: tuple[str, ...] = ("defaultApp", "clickToCall", "webinar")
    nodes: int = 2
    keepalive_interval_ms: int = 10_000
    keepalive_jitter_ms: int = 400
    stats_interval_ms: int = 60_000
    duplicate_rate: float = 0.03
    reorder_rate: float = 0.3
    missing_end_rate: float = 0.1
    gap_rate: float = 0.15

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "reorder_rate", "missing_end_rate", "gap_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        counts = ("connections", "calls", "publishers", "viewers", "messages", "data_ops", "errors")
        for name in counts:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.app_keys or self.nodes < 1:
            raise ValueError("need at least one app key and one node")
        if self.duration_ms < MIN_DURATION_MS:
            raise ValueError(f"duration_ms must be >= {MIN_DURATION_MS}, got {self.duration_ms}")
        if self.stats_interval_ms <= 0:
            raise ValueError("stats_interval_ms must be > 0")
        interval, jitter = self.keepalive_interval_ms, self.keepalive_jitter_ms
        if interval < 1000 or not 0 <= jitter < interval // 4:
            raise ValueError("keepalive_interval_ms must be >= 1000 and jitter < interval / 4")
        # a gap (one keep-alive skipped) must stay below the keep-alive timeout
        if 2 * (interval + jitter) + RETRY_DELAY_MS[1] >= self.keepalive_timeout_ms:
            raise ValueError("keepalive_interval_ms too large: a gap would reach the timeout")

    @property
    def keepalive_timeout_ms(self) -> int:
        return KEEPALIVE_TIMEOUT_FACTOR * self.keepalive_interval_ms

    @property
    def tail_ms(self) -> int:
        """Traffic continues at least this long after a stream's keep-alives stop."""
        return self.keepalive_timeout_ms + TAIL_MARGIN_MS

    @property
    def keepalive_gap_threshold_ms(self) -> int:
        return int(GAP_FACTOR * self.keepalive_interval_ms)

    @property
    def end_ms(self) -> int:
        """The last regular hook (a node statistics event) arrives at this time."""
        return self.start_ms + self.duration_ms
