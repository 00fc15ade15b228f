"""Rated exports: price the period's sessions with a deck, record the run, render it.

``run_rated`` reads the sessions (``sessions.py``), rates each (``sinks.rating``), and
compares the content with the chain's latest run (``ledger_store``): identical content is
status ``same`` (the same export id, nothing new stored); otherwise the lines are stored
under a new id, status ``first`` or ``correction`` (with the diff against the latest run).
Every run is recorded in ``export_runs``. ``rated_chunks`` / ``correction_chunks`` render a
recorded run with ClickHouse's formats (``manifest.py``: its control totals). Blocking.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson

from sinks.exports import OUTPUT_SETTINGS, rated_sql, stream_file
from sinks.exports import ledger as lg
from sinks.exports import ledger_store as store
from sinks.exports.manifest import RatedRun, costs_json
from sinks.exports.sessions import read_sessions
from sinks.exports.spec import ExportSpec
from sinks.rating.deck import Deck
from sinks.rating.rate import rate

RATED_KINDS = ("billing", "cdr")


def parameters(spec: ExportSpec) -> dict[str, object]:
    return {"group_by": list(spec.group_by)} if spec.kind == "billing" else {}


def rate_lines(client: Any, db: str, spec: ExportSpec, deck: Deck) -> list[lg.Line]:
    products = ("call", "stream", "message") if spec.kind == "billing" else ("call",)
    view = spec if spec.kind == "billing" else replace(spec, group_by=())
    return [
        lg.line_of(base, rate(s, deck)) for s, base in read_sessions(client, db, view, products)
    ]


def run_rated(client: Any, db: str, spec: ExportSpec, deck: Deck, now_ms: int) -> RatedRun:
    """Rate, compare with the chain's latest run, store what is new, record the run."""
    if spec.kind not in RATED_KINDS:
        raise ValueError(f"--deck rates {' and '.join(RATED_KINDS)} exports, not {spec.kind}")
    lines = rate_lines(client, db, spec, deck)
    params = parameters(spec)
    chain = lg.chain_of(spec.kind, spec.from_ms, spec.to_ms, params)
    digest, total = lg.content_digest(lines), lg.totals(lines)
    revisions = sorted({line.deck_revision for line in lines if line.deck_revision})
    latest = store.latest_run(client, db, chain)
    previous, corrections = None, []
    if latest is not None and latest.content_digest == digest:
        status, export_id, corrects = "same", latest.export_id, latest.corrects
    else:
        corrects = latest.export_id if latest else ""
        export_id = lg.export_id(chain, revisions, digest, corrects)
        status = "correction" if latest else "first"
        store.insert_lines(client, db, export_id, lines)
        if latest is not None:
            old = store.load_lines(client, db, latest.export_id)
            previous, corrections = lg.totals(old), lg.diff(old, lines)
    record = store.RunRecord(
        export_id, chain, spec.kind, spec.from_ms, spec.to_ms,
        orjson.dumps(params).decode(), status, corrects, deck.digest, tuple(revisions), digest,
        _rows(spec, lines), total.sessions, total.unrated, total.billed_seconds,
        orjson.dumps(costs_json(total, deck.decimals)).decode(), deck.decimals,
        _fee_decimals(deck), now_ms,
    )  # fmt: skip
    store.insert_run(client, db, record)
    return RatedRun(record, total, previous, corrections)


def recorded_run(client: Any, db: str, export_id: str) -> RatedRun | None:
    """A recorded run (its latest record: a re-run shows as ``same``) with its totals and,
    for a correction, the diff against the run it corrects; None if unknown."""
    record = store.find_run(client, db, export_id)
    if record is None:
        return None
    lines = store.load_lines(client, db, export_id)
    if not record.corrects:
        return RatedRun(record, lg.totals(lines))
    old = store.load_lines(client, db, record.corrects)
    return RatedRun(record, lg.totals(lines), lg.totals(old), lg.diff(old, lines))


def _rows(spec: ExportSpec, lines: list[lg.Line]) -> int:
    if spec.kind == "cdr":
        return len(lines)
    return len({(line.section, line.group_keys, line.currency, line.reason) for line in lines})


def _fee_decimals(deck: Deck) -> int:
    fees = [f for r in deck.revisions for x in r.rates for f in (x.connect_fee, x.attempt_fee)]
    places = [-int(f.normalize().as_tuple().exponent) for f in fees]
    return max([deck.decimals, *places])


def _stream(client: Any, sql: str, columns: tuple[str, ...], fmt_name: str) -> Iterator[bytes]:
    return stream_file(client, sql, columns, fmt_name, OUTPUT_SETTINGS | {"join_use_nulls": 0})


def _group_by(record: store.RunRecord) -> tuple[str, ...]:
    return tuple(orjson.loads(record.parameters).get("group_by", ()))


def rated_chunks(client: Any, db: str, record: store.RunRecord, fmt_name: str) -> Iterator[bytes]:
    """The run's file: rated CDR lines or rated billing rows."""
    if record.kind == "cdr":
        yield from _stream(client, rated_sql.cdr_sql(db, record), rated_sql.CDR_COLUMNS, fmt_name)
        return
    keys = _group_by(record)
    sql, columns = rated_sql.billing_sql(db, record, keys), rated_sql.billing_columns(keys)
    yield from _stream(client, sql, columns, fmt_name)


def correction_chunks(
    client: Any, db: str, record: store.RunRecord, fmt_name: str
) -> Iterator[bytes]:
    """The sessions that changed since the run ``record`` corrects (``record.corrects``)."""
    if not record.corrects:
        raise ValueError(f"export {record.export_id} is a first run: it corrects nothing")
    keys = _group_by(record)
    sql = rated_sql.correction_sql(db, record, keys)
    yield from _stream(client, sql, rated_sql.correction_columns(keys), fmt_name)
