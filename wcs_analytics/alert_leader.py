"""FAILED-spike alerts on the Kafka path: the detector run by the worker group's leader.

Windows are counted per input partition and summed in ClickHouse (``status_counts``,
sinks/window_totals.py), so the detector reads the totals from there. It evaluates a
minute once the low watermark -- the slowest input partition's stored clock -- has passed
it by the evaluation delay (docs/alerts.md#kafka): whatever the backlog, every partition
has then counted that minute. Its state is a row of the state table (key ``#alerts``), so
a new leader continues it. Alert rows go to the ``alerts`` table here; the caller sends
them to the alerts topic and webhooks.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from events.tables import STATUS_COUNTS
from processors.alert_rules import AlertRules
from processors.alert_stage import AlertStage
from processors.clock import wall_ms
from sinks.client import connect
from sinks.errors import translated
from sinks.writer import ClickHouseWriter

log = logging.getLogger(__name__)

KEY = "#alerts"
COLUMNS = STATUS_COUNTS.column_names


class AlertLeader:
    def __init__(self, dsn: str, database: str, rules: AlertRules, parts_prefix: str) -> None:
        self._db, self._prefix = database, parts_prefix
        self.client = connect(dsn, database)
        self.writer = ClickHouseWriter(self.client, database, now_ms=wall_ms)
        self.stage = AlertStage(rules)
        self._version = 0
        state = self._query(
            "SELECT argMax(state, version) FROM {db}.entity_state "
            "WHERE family = '' AND key = {k:String}",
            {"k": KEY},
        )
        if state and state[0][0]:
            self.stage.load(orjson.loads(state[0][0]))
            log.info("adopted the alert detector (evaluated through %s)", self.stage.state.through)

    def _query(self, sql: str, parameters: dict[str, Any]) -> list[Any]:
        with translated("alert detector"):
            rows: list[Any] = self.client.query(
                sql.replace("{db}", self._db), parameters=parameters
            ).result_rows
            return rows

    def low_watermark(self) -> int | None:
        """The slowest input partition's stored clock (None before any stored one)."""
        rows = self._query(
            "SELECT min(clock) FROM (SELECT key, "
            "toUnixTimestamp64Milli(argMax(last_event_at, version)) AS clock "
            "FROM {db}.entity_state WHERE family = '' AND startsWith(key, {p:String}) "
            "GROUP BY key)",
            {"p": self._prefix},
        )
        return int(rows[0][0]) if rows and rows[0][0] else None

    def step(self, final: bool = False) -> list[dict[str, Any]]:
        """Evaluate what the low watermark made due; returns the alert rows written."""
        low = self.low_watermark()
        due = self.stage.next_due
        if low is None or (due is not None and low < due and self.stage.state.through is not None):
            return []
        through = self.stage.state.through
        times = STATUS_COUNTS.time_columns
        select = ", ".join(f"toUnixTimestamp64Milli({c})" if c in times else c for c in COLUMNS)
        rows = self._query(
            f"SELECT {select} FROM {{db}}.status_counts FINAL "
            "WHERE toUnixTimestamp64Milli(window_start) > {after:Int64}",
            {"after": -1 if through is None else through},
        )
        self.stage.accept([("status_counts", dict(zip(COLUMNS, r, strict=True))) for r in rows])
        fired = self.stage.advance(low)
        self._store(fired)
        return [values for _, values in fired]

    def _store(self, fired: list[Any]) -> None:
        now = wall_ms()
        self._version = max(self._version + 1, now * 1000)
        self.writer.add(fired)
        state = orjson.dumps(self.stage.to_json()).decode()
        self.writer.add_state(
            [
                {"family": "", "key": KEY, "part": KEY, "open": 1, "last_event_at": now,
                 "written_at": now, "state": state, "version": self._version}
            ]
        )  # fmt: skip
        self.writer.flush()
