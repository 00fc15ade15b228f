"""Embedded adapter for the FAILED-spike detector: a row sink in front of the real one.

It forwards every row unchanged, feeds the ``status_counts`` rows it sees to
``processors.alerts`` and evaluates on the event clock (``now``) after each batch;
alert rows go into the same sink (``alerts`` table) and to ``notify`` (webhooks).
No business logic here. A Faust agent does the same with its own loop: ``add`` every
``status_counts`` row it consumes, ``evaluate(state, now, rules)`` on its clock, keep
``state.to_dict()`` in a table, produce the rows (docs/alerts.md#kafka).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from events.envelope import Envelope
from events.tables import Row
from processors import alerts
from processors.alert_rules import AlertRules
from processors.embedded import RowSink

log = logging.getLogger(__name__)

Notify = Callable[[list[dict[str, Any]]], None]
TOTALS_KEEP_MS = 3 * 3600_000  # longer than any window retention: re-emits stay deltas


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


class AlertingSink:
    """A ``RowSink`` wrapper. ``now`` is the event clock (``EventClock.now``; a replay's
    ``pipeline.clock_ms``). ``snapshot_path``: detector state saved after each flush that
    follows a change (flush-then-save) and loaded here, so a restart keeps baselines
    and firing alerts. Not thread-safe: called from the runner only."""

    def __init__(
        self,
        inner: RowSink,
        rules: AlertRules,
        now: Callable[[], int | None],
        notify: Notify | None = None,
        snapshot_path: Path | None = None,
    ) -> None:
        self.inner, self.rules, self._now, self._notify = inner, rules, now, notify
        self.snapshot_path = snapshot_path
        self.state = _load(snapshot_path)
        self.status = StatusTotals()
        self.alerts_emitted = 0
        self._changed = False

    @property
    def pending(self) -> int:
        return self.inner.pending

    def add_envelope(self, envelope: Envelope) -> None:
        self.inner.add_envelope(envelope)

    def due(self) -> bool:
        return self.inner.due()

    def add(self, rows: Iterable[Row]) -> None:
        rows = list(rows)
        self.inner.add(rows)
        for table, values in rows:
            if table == "status_counts":
                self.status.add(values)
                self.state = alerts.add(self.state, values)
                self._changed = True
        now = self._now()
        if now is None:
            return
        through = self.state.through
        self.state, fired = alerts.evaluate(self.state, now, self.rules)
        self._changed = self._changed or through != self.state.through
        if fired:
            self.alerts_emitted += len(fired)
            self.inner.add(fired)
            if self._notify is not None:
                self._notify([values for _, values in fired])

    def flush(self) -> int:
        written = self.inner.flush()
        if self.snapshot_path is not None and self._changed:
            tmp = self.snapshot_path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(self.state.to_dict()))
            os.replace(tmp, self.snapshot_path)
            self._changed = False
        return written


def _load(path: Path | None) -> alerts.DetectorState:
    if path is None or not path.is_file():
        return alerts.initialize()
    try:
        return alerts.DetectorState.from_dict(orjson.loads(path.read_bytes()))
    except (ValueError, KeyError, TypeError):
        log.exception("ignoring unreadable alert state %s (baselines start over)", path)
        return alerts.initialize()
