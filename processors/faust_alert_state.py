"""The FAILED-spike detector of the Faust workers, persisted in a table-like mapping (no Faust).

An ``AlertPartition`` wraps the SAME pure detector as embedded mode
(``processors.alerts``: ``add`` every ``status_counts`` row, ``evaluate`` on an event
clock) plus what the Kafka path needs (docs/alerts.md#kafka):

* **Clock.** The rows carry no emission time, but the window stage emits a window
  only once its partition's clock passed ``window_end + window_lateness_ms``, so the
  newest row's ``window_start + window_ms + window_lateness_ms`` (the *frontier*) is
  a lower bound of the event time. Window partitions progress unevenly and re-emit
  windows that got late hits, so the detector evaluates at ``frontier - settle_ms``
  while running; at the end of input the worker brings it to the worker's clock
  (``advance(at_least=...)``), as embedded ``finish`` does. The verdicts do not depend
  on when a window is evaluated as long as its final rows arrived before.
* **Persistence, incremental.** One table entry per held row (``pending``: its
  version and count) and one ``head`` entry (baselines, firing alerts, frontier,
  outbox), written when an evaluation changed it. Cost per row is O(1), so a large
  ``settle_ms`` is affordable.
* **Outbox.** The alert rows of a record are stored in the head entry written with
  the evaluation that made them (one changelog record: the verdict and its output
  survive a crash together). ``load`` returns the rows of every outbox entry at or
  after the first offset a worker receives; ``prune`` drops committed ones. Repeats
  carry the same ``alert_id`` and ``version`` (harmless in ReplacingMergeTree).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from events.tables import Row
from processors import alerts
from processors.alert_rules import AlertRules
from processors.embedded import EventClock

ALERT_KEY = b"\x00wcs-alert-detector"  # message key of every record of the detector topic
HEAD = b"head"
Table = MutableMapping[bytes, bytes]


def pending_key(ws: int, key: alerts.RowKey) -> bytes:
    return orjson.dumps(["pending", ws, *key])


class AlertPartition:
    """The detector of one worker group (one key, so one partition of the detector topic)."""

    def __init__(
        self, table: Table, rules: AlertRules, lateness_ms: int, settle_ms: int, clock: EventClock
    ) -> None:
        self.table, self.rules, self.clock = table, rules, clock
        self.lateness_ms, self.settle_ms = lateness_ms, settle_ms
        self.state = alerts.initialize()
        self.frontier: int | None = None
        self.outbox: list[tuple[int, list[Row]]] = []  # (input offset, alert rows), ascending

    @classmethod
    def load(
        cls, table: Table, rules: AlertRules, lateness_ms: int, settle_ms: int,
        clock: EventClock, first_offset: int,
    ) -> tuple[AlertPartition, list[Row]]:  # fmt: skip
        """Restore from ``table``; returns the outbox rows to send again."""
        part = cls(table, rules, lateness_ms, settle_ms, clock)
        head = table.get(HEAD)
        if head is not None:
            obj = orjson.loads(head)
            part.state = alerts.DetectorState.from_dict(obj["state"] | {"pending": []})
            part.outbox = [(o, [(t, r) for t, r in rows]) for o, rows in obj["outbox"]]
            part._observe(obj["frontier"])
        for tkey, raw in list(table.items()):
            if tkey != HEAD:
                _, ws, *key = orjson.loads(tkey)
                version, count = orjson.loads(raw)
                part.state.pending.setdefault(ws, {})[tuple(key)] = (version, count)
        if part.state.pending:
            part._observe(max(part.state.pending) + rules.window_ms + lateness_ms)
        part.prune(first_offset)
        return part, [row for _, rows in part.outbox for row in rows]

    def add(self, row: dict[str, Any], offset: int) -> list[Row]:
        """One ``status_counts`` row; returns the alert rows it made due."""
        ws = row["window_start"]
        key = (row["family"], row["status"], row["app_key"], row["node_id"])
        held = self.state.pending.get(ws, {}).get(key)
        late = self.state.late_ignored
        self.state = alerts.add(self.state, row)
        now_held = self.state.pending.get(ws, {}).get(key)
        if now_held is not None and now_held != held:
            self.table[pending_key(ws, key)] = orjson.dumps(now_held)
        self._observe(ws + self.rules.window_ms + self.lateness_ms)
        return self.advance(None, offset, changed=late != self.state.late_ignored)

    def advance(self, at_least: int | None, offset: int, changed: bool = False) -> list[Row]:
        """Evaluate at the clock (or ``at_least`` if later: the end-of-input flush)."""
        now = self.clock.now()
        if at_least is not None:
            now = at_least if now is None else max(now, at_least)
        through, rows = self.state.through, list[Row]()
        if now is not None:
            held = dict(self.state.pending)  # window -> its rows (evaluate pops windows)
            self.state, rows = alerts.evaluate(self.state, now, self.rules)
            for ws in held.keys() - self.state.pending.keys():
                for key in held[ws]:
                    self.table.pop(pending_key(ws, key), None)
        if rows:
            self.outbox.append((offset, rows))
        if changed or rows or through != self.state.through:
            self._write_head()
        return rows

    def prune(self, committed: int) -> None:
        """Drop outbox entries of records before ``committed`` (never redelivered)."""
        if self.outbox and self.outbox[0][0] < committed:
            self.outbox = [(o, rows) for o, rows in self.outbox if o >= committed]
            self._write_head()

    def _write_head(self) -> None:
        state = self.state.to_dict() | {"pending": []}
        head = {"state": state, "frontier": self.frontier, "outbox": self.outbox}
        self.table[HEAD] = orjson.dumps(head)

    def _observe(self, frontier: int | None) -> None:
        if frontier is not None and (self.frontier is None or frontier > self.frontier):
            self.frontier = frontier
            self.clock.observe(frontier - self.settle_ms)
