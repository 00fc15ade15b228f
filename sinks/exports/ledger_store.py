"""The export ledger in ClickHouse: record runs and their lines, read them back.

Thin adapter over ``ledger_tables`` (columns defined there, once). Blocking; raises the
driver's errors (a database older than migration 5 has no ledger tables: run
``wcs-analytics migrate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sinks.exports.ledger import Line
from sinks.exports.ledger_tables import EXPORT_LINES, EXPORT_RUNS
from sinks.schema import check_identifier, column_types

_LINE_FIELDS = tuple(name for name in EXPORT_LINES.column_names if name not in ("export_id",))
_TIME_FIELDS = {"created_at": "created_ms", "started_at": "started_ms", "ended_at": "ended_ms"}


@dataclass(frozen=True, slots=True)
class RunRecord:
    export_id: str
    chain: str
    kind: str
    from_ms: int
    to_ms: int
    parameters: str
    status: str
    corrects: str
    deck_digest: str
    deck_revisions: tuple[str, ...]
    content_digest: str
    rows: int
    sessions: int
    unrated: int
    billed_seconds: int
    totals: str
    decimals: int
    fee_decimals: int
    created_ms: int


def _line_values(export_id: str, line: Line) -> list[Any]:
    values: list[Any] = [export_id]
    for name in _LINE_FIELDS:
        if name == "fingerprint":
            values.append(line.fingerprint)
        else:
            values.append(getattr(line, _TIME_FIELDS.get(name, name)))
    return values


def insert_lines(client: Any, db: str, export_id: str, lines: list[Line]) -> None:
    check_identifier(db)
    if lines:
        rows = [_line_values(export_id, line) for line in lines]
        client.insert(EXPORT_LINES.name, rows, column_names=EXPORT_LINES.column_names,
                      database=db, column_type_names=column_types(EXPORT_LINES))  # fmt: skip


def insert_run(client: Any, db: str, run: RunRecord) -> None:
    check_identifier(db)
    row = [run.export_id, run.chain, run.kind, run.from_ms, run.to_ms, run.parameters,
           run.status, run.corrects, run.deck_digest, list(run.deck_revisions),
           run.content_digest, run.rows, run.sessions, run.unrated, run.billed_seconds,
           run.totals, run.decimals, run.fee_decimals, run.created_ms]  # fmt: skip
    client.insert(EXPORT_RUNS.name, [row], column_names=EXPORT_RUNS.column_names,
                  database=db, column_type_names=column_types(EXPORT_RUNS))  # fmt: skip


def _runs_sql(db: str, where: str) -> str:
    check_identifier(db)
    cols = ", ".join(
        f"toUnixTimestamp64Milli({name})" if name in EXPORT_RUNS.time_columns else name
        for name in EXPORT_RUNS.column_names
    )
    return f"SELECT {cols} FROM {db}.{EXPORT_RUNS.name} WHERE {where}"


def latest_run(client: Any, db: str, chain: str) -> RunRecord | None:
    """The chain's most recent run (its current billed state), or None."""
    sql = _runs_sql(db, "chain = {chain:String}") + " ORDER BY created_at DESC, status LIMIT 1"
    rows = client.query(sql, parameters={"chain": chain}).result_rows
    return _record(rows[0]) if rows else None


def find_run(client: Any, db: str, export_id: str) -> RunRecord | None:
    """The latest record of this id (a ``same`` re-run repeats the id), or None."""
    sql = _runs_sql(db, "export_id = {id:String}") + " ORDER BY created_at DESC LIMIT 1"
    rows = client.query(sql, parameters={"id": export_id}).result_rows
    return _record(rows[0]) if rows else None


def list_runs(client: Any, db: str, kind: str | None, from_ms: int, to_ms: int) -> list[RunRecord]:
    """Runs of ``kind`` (None: every kind) whose period overlaps ``[from_ms, to_ms)``, oldest
    first."""
    where = (
        "({kind:String} = '' OR kind = {kind:String})"
        " AND period_from < fromUnixTimestamp64Milli({to:Int64}, 'UTC')"
        " AND period_to > fromUnixTimestamp64Milli({from:Int64}, 'UTC')"
    )
    sql = _runs_sql(db, where) + " ORDER BY created_at, export_id"
    params = {"kind": kind or "", "from": from_ms, "to": to_ms}
    return [_record(row) for row in client.query(sql, parameters=params).result_rows]


def _record(row: Any) -> RunRecord:
    values = list(row)
    values[9] = tuple(values[9])
    return RunRecord(*values)


def load_lines(client: Any, db: str, export_id: str) -> list[Line]:
    check_identifier(db)
    cols = ", ".join(
        f"toUnixTimestamp64Milli({n})" if n in EXPORT_LINES.time_columns else n
        for n in _LINE_FIELDS
        if n != "fingerprint"
    )
    sql = (
        f"SELECT {cols} FROM {db}.{EXPORT_LINES.name} FINAL WHERE export_id = {{id:String}}"
        " ORDER BY session_key"
    )
    lines = []
    for row in client.query(sql, parameters={"id": export_id}).result_rows:
        values = dict(zip((n for n in _LINE_FIELDS if n != "fingerprint"), row, strict=True))
        values = {_TIME_FIELDS.get(k, k): v for k, v in values.items()}
        values["group_keys"] = tuple(values["group_keys"])
        for money in ("attempt_fee", "connect_fee", "cost"):
            values[money] = Decimal(values[money]).normalize() if values[money] else Decimal(0)
        lines.append(Line(**values))
    return lines
