"""One flush worth of rows: what a runtime flush and the envelopes since the last one give.

Pure: no IO, no clock. ``events`` rows are kept as columns (built straight from the
envelopes, the body as the raw JSON text when the caller has it); the other tables as
row dicts (one per entity per flush: the runtime renders each changed entity once, so
nothing needs coalescing here). ``state`` rows go last: the state store writes them after
the rows they describe (flush, then checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from events.envelope import Envelope
from events.tables import EVENTS, TABLES, Row

Values = dict[str, Any]
EVENT_COLUMNS = EVENTS.column_names


class Batch:
    """Pending rows by table; ``add_*`` never raise for size (the caller bounds batches)."""

    __slots__ = ("events", "first_received_at", "rows", "state")

    def __init__(self) -> None:
        self.events: list[list[Any]] = [[] for _ in EVENT_COLUMNS]
        self.rows: dict[str, list[Values]] = {}
        self.state: list[Values] = []
        self.first_received_at: int | None = None

    def __len__(self) -> int:
        return len(self.events[0]) + sum(map(len, self.rows.values())) + len(self.state)

    @property
    def event_count(self) -> int:
        return len(self.events[0])

    def add_events(
        self, envelopes: Sequence[Envelope], bodies: Sequence[str | None] | None = None
    ) -> None:
        """``events`` rows of ``envelopes``; ``bodies[i]`` is envelope i's body as JSON text
        when the caller kept it (saves re-serialising), None to serialise it here."""
        ids, times, methods, families, keys, nodes, apps, sessions, texts = self.events
        for i, env in enumerate(envelopes):
            ids.append(env["id"])
            times.append(env["received_at"])
            methods.append(env["method"])
            families.append(env["family"])
            keys.append(env["key"])
            nodes.append(env["node_id"] or "")
            apps.append(env["app_key"] or "")
            sessions.append(env["session_id"] or "")
            body = None if bodies is None else bodies[i]
            texts.append(orjson.dumps(env["body"]).decode() if body is None else body)

    def add_events_columns(self, columns: list[list[Any]]) -> None:
        for mine, theirs in zip(self.events, columns, strict=True):
            mine.extend(theirs)

    def add_rows(self, rows: Iterable[Row]) -> None:
        """Rows by table (``events`` rows too: put into its columns). Raises ValueError for
        an unknown table, before adding anything; a row missing a column is dead-lettered
        when written."""
        rows = list(rows)
        unknown = sorted({table for table, _ in rows if table not in TABLES})
        if unknown:
            raise ValueError(f"unknown table {unknown[0]!r}")
        columns = set(EVENT_COLUMNS)
        if any(table == "events" and values.keys() != columns for table, values in rows):
            raise ValueError(f"an events row needs exactly the columns {', '.join(EVENT_COLUMNS)}")
        for table, values in rows:
            if table == "events":
                for column, name in zip(self.events, EVENT_COLUMNS, strict=True):
                    column.append(values[name])
            else:
                self.rows.setdefault(table, []).append(values)

    def add_state(self, rows: Iterable[Values]) -> None:
        self.state.extend(rows)


def event_rows(columns: list[list[Any]]) -> list[Values]:
    """Columns back to row dicts (only for the rare dead-letter isolation of events)."""
    return [dict(zip(EVENT_COLUMNS, values, strict=True)) for values in zip(*columns, strict=True)]


def envelope_lines(columns: list[list[Any]]) -> list[bytes]:
    """The envelopes of ``events`` columns as NDJSON lines (the spool format; the body text
    kept as it is, '' scope ids back to null)."""
    lines = []
    dumps = orjson.dumps
    for values in zip(*columns, strict=True):
        row = dict(zip(EVENT_COLUMNS, values, strict=True))
        head = {
            "v": 1, "id": row["id"], "received_at": row["received_at"], "method": row["method"],
            "family": row["family"], "key": row["key"], "node_id": row["node_id"] or None,
            "session_id": row["session_id"] or None, "app_key": row["app_key"] or None,
        }  # fmt: skip
        lines.append(dumps(head)[:-1] + b',"body":' + row["body"].encode() + b"}\n")
    return lines
