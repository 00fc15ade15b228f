"""Tuning of the processors: timeouts, windows and retention, all in event-time milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

MAX_WINDOW_RETENTION_MS: Final = 7 * 24 * 3600_000  # the state table's TTL is 8 days


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    """Every duration is event time (envelope ``received_at``) in milliseconds.

    ``keepalive_gap_threshold_ms`` / ``keepalive_timeout_ms`` default to 1.5x / 3x
    ``keepalive_interval_ms`` (read them through ``gap_threshold_ms`` and
    ``keepalive_timeout``). A window is emitted once the clock passes
    ``window_end + window_lateness_ms`` and kept until ``window_end +
    window_retention_ms`` so late hits re-emit it. Closed entities are kept in memory
    ``closed_retention_ms`` after closing, then in the state store: an event up to
    ``late_event_retention_ms`` after the close still updates them (a real end after a
    timeout); a session-starting hook more than ``key_reuse_gap_ms`` after a session ended
    by its terminal event starts a new session with the same key. An envelope more than
    ``max_clock_jump_ms`` ahead of the partition clock, or ``max_future_ms`` ahead of the
    wall clock (when there is one), is rejected as implausible.
    ``keepalive_reorder_window`` is how many newest keep-alive times a stream keeps.
    """

    keepalive_interval_ms: int = 10_000
    keepalive_gap_threshold_ms: int | None = None
    keepalive_timeout_ms: int | None = None
    stream_idle_timeout_ms: int = 12 * 3600_000
    call_idle_timeout_ms: int = 12 * 3600_000
    call_setup_timeout_ms: int = 5 * 60_000
    connection_idle_timeout_ms: int = 24 * 3600_000
    message_idle_timeout_ms: int = 3600_000
    window_ms: int = 60_000
    window_lateness_ms: int = 60_000
    window_retention_ms: int = 3600_000
    closed_retention_ms: int = 600_000
    keepalive_reorder_window: int = 64
    late_event_retention_ms: int = 7 * 24 * 3600_000
    key_reuse_gap_ms: int = 600_000
    max_clock_jump_ms: int = 7 * 24 * 3600_000
    max_future_ms: int = 24 * 3600_000

    @property
    def gap_threshold_ms(self) -> int:
        """A keep-alive gap is reported when it is strictly longer than this."""
        if self.keepalive_gap_threshold_ms is not None:
            return self.keepalive_gap_threshold_ms
        return self.keepalive_interval_ms * 3 // 2

    @property
    def keepalive_timeout(self) -> int:
        """A stream with keep-alives closes this long after its last event."""
        if self.keepalive_timeout_ms is not None:
            return self.keepalive_timeout_ms
        return self.keepalive_interval_ms * 3

    def validate(self) -> ProcessorConfig:
        """Return self, or raise ValueError naming the first bad field."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{f.name} must be an int, got {value!r}")
            lowest = 0 if f.name in _MAY_BE_ZERO else 1
            if value < lowest:
                raise ValueError(f"{f.name} must be >= {lowest}, got {value}")
        if self.keepalive_reorder_window < 2:
            raise ValueError("keepalive_reorder_window must be >= 2 (a gap needs two times)")
        if self.window_retention_ms < self.window_lateness_ms:
            raise ValueError(
                "window_retention_ms must be >= window_lateness_ms "
                f"({self.window_retention_ms} < {self.window_lateness_ms})"
            )
        if self.window_retention_ms > MAX_WINDOW_RETENTION_MS:
            # a held minute of counters may go unwritten that long, and the state table
            # keeps its row 8 days after it was written (events.tables: TTL)
            raise ValueError(
                f"window_retention_ms must be <= {MAX_WINDOW_RETENTION_MS} (7 days), "
                f"got {self.window_retention_ms}"
            )
        return self


_MAY_BE_ZERO = frozenset({"window_lateness_ms", "window_retention_ms", "closed_retention_ms"})
