"""The alerting stage: ``status_counts`` rows in, FAILED-spike ``alerts`` rows out.

An explicit stage after the windows (docs/alerts.md): the runtime hands it every
``status_counts`` row it emits (``accept``) and calls ``advance(now)`` once its event
clock reaches ``next_due``, right after emitting the windows due at that clock, so the
detector sees exactly the counts a per-event run would have shown it. No IO: the
caller sends the returned rows to the sink and to webhooks.
"""

from __future__ import annotations

from typing import Any, Final

from events.tables import Row
from processors import alerts
from processors.alert_rules import AlertRules

TOTALS_KEEP_MS: Final = 3 * 3600_000  # longer than any window retention: re-emits stay deltas


class StatusTotals:
    """Monotonic ``(family, status) -> hits`` from status_counts rows: a re-emitted window
    adds only its increase over the count already seen (for ``wcs_status_total``)."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], int] = {}
        self._seen: dict[tuple[Any, ...], int] = {}
        self._newest = 0

    def add(self, row: dict[str, Any]) -> None:
        key = (row["window_start"], row["family"], row["status"], row["app_key"], row["node_id"])
        delta = row["count"] - self._seen.get(key, 0)
        if delta > 0:
            self._seen[key] = row["count"]
            name = (row["family"], row["status"])
            self.totals[name] = self.totals.get(name, 0) + delta
        if row["window_start"] > self._newest + TOTALS_KEEP_MS // 3:
            self._newest = row["window_start"]
            cutoff = self._newest - TOTALS_KEEP_MS
            self._seen = {k: v for k, v in self._seen.items() if k[0] >= cutoff}


class AlertStage:
    """Detector state plus the clock rule of ``processors.alerts.evaluate``."""

    def __init__(self, rules: AlertRules, state: alerts.DetectorState | None = None) -> None:
        self.rules = rules
        self.state = state or alerts.initialize()
        self.status = StatusTotals()
        self.alerts_emitted = 0

    def accept(self, rows: list[Row]) -> None:
        """Take the window rows a runtime emitted (other tables are ignored)."""
        for table, values in rows:
            if table == "status_counts":
                self.status.add(values)
                alerts.add(self.state, values)

    @property
    def next_due(self) -> int | None:
        """The smallest event time at which ``advance`` can evaluate a window."""
        w, delay = self.rules.window_ms, self.rules.evaluation_delay_ms
        if self.state.through is not None:
            return self.state.through + 2 * w + delay + 1
        if not self.state.pending:
            return None
        return min(self.state.pending) + w + delay + 1

    def advance(self, now_ms: int) -> list[Row]:
        """Evaluate every window due at ``now_ms``; returns ``alerts`` rows."""
        self.state, fired = alerts.evaluate(self.state, now_ms, self.rules)
        self.alerts_emitted += len(fired)
        return fired

    def to_json(self) -> dict[str, Any]:
        return self.state.to_dict()

    def load(self, data: dict[str, Any]) -> None:
        self.state = alerts.DetectorState.from_dict(data)
