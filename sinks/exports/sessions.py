"""The sessions a rated export prices, read from ``calls``/``streams``/``messages`` FINAL.

Same period rule as the plain exports (docs/exports.md): a call or stream belongs to
``[from, to)`` by its **end**; a message by ``sent_at``. Calls of every disposition come
in (an unanswered call may carry an attempt fee); streams that started, of kind publish,
play, hls or rtsp; messages sent and not FAILED. Calls answered and streams started
before ``to`` that have not ended by then come in as open (``ended_ms`` None, duration so
far) and are listed unrated with reason ``open``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sinks.exports.ledger import Line
from sinks.exports.queries import group_keys_sql, ms, source_sql
from sinks.exports.spec import ExportSpec
from sinks.rating.rate import Session
from sinks.schema import check_identifier

COLUMNS = (
    "product",
    "key",
    "incarnation",
    "node_id",
    "app_key",
    "caller",
    "callee",
    "direction",
    "disposition",
    "created_ms",
    "started_ms",
    "ended_ms",
    "duration_ms",
    "group_keys",
)
FAMILY = {"call": "call", "message": "message"}  # every other product is a stream


def _select(db: str, table: str, where: str, spec: ExportSpec, start: str, **cols: str) -> str:
    to, milli = ms(spec.to_ms), "toUnixTimestamp64Milli"
    closed = f"t.ended_at IS NOT NULL AND t.ended_at < {to}"
    values = cols | {
        "created_ms": f"{milli}(t.created_at)",
        "started_ms": f"if(t.{start} IS NULL, NULL, {milli}(assumeNotNull(t.{start})))",
        "ended_ms": cols.get("ended_ms", f"if({closed}, {milli}(assumeNotNull(t.ended_at)), NULL)"),
        "group_keys": group_keys_sql(table, spec),
    }
    exprs = ", ".join(f"{values[name]} AS {name}" for name in COLUMNS)
    return f"SELECT {exprs} FROM {source_sql(db, table, where, spec)}"


def sessions_sql(db: str, spec: ExportSpec, products: tuple[str, ...]) -> str:
    """Every session of the period for ``products`` (``call``, ``stream``, ``message``)."""
    check_identifier(db)
    frm, to = ms(spec.from_ms), ms(spec.to_ms)
    ended = f"(ended_at >= {frm} AND ended_at < {to})"
    still = f"(ended_at IS NULL OR ended_at >= {to})"
    so_far = f"toUnixTimestamp64Milli({to}) - toUnixTimestamp64Milli(assumeNotNull(t.{{}}))"
    selects = {
        "call": _select(
            db, "calls", f"{ended} OR (answered_at IS NOT NULL AND answered_at < {to} AND {still})",
            spec, "answered_at", product="'call'", key="t.call_id", incarnation="t.incarnation",
            caller="t.caller",
            callee="t.callee", direction="if(t.incoming, 'incoming', 'outgoing')",
            disposition="toString(t.disposition)", duration_ms=(
                f"if(t.ended_at IS NOT NULL AND t.ended_at < {to}, coalesce(t.talk_ms, 0), "
                f"{so_far.format('answered_at')})"),
            node_id="toString(t.node_id)", app_key="toString(t.app_key)",
        ),
        "stream": _select(
            db, "streams", f"started_at IS NOT NULL AND kind IN ('publish', 'play', 'hls', 'rtsp')"
            f" AND started_at < {to} AND ({ended} OR {still})", spec, "started_at",
            product="toString(t.kind)", key="t.media_session_id", incarnation="t.incarnation",
            caller="''", callee="t.name",
            direction="''", disposition="toString(t.final_status)", duration_ms=(
                f"if(t.ended_at IS NOT NULL AND t.ended_at < {to}, coalesce(t.lifetime_ms, 0), "
                f"{so_far.format('started_at')})"),
            node_id="toString(t.node_id)", app_key="toString(t.app_key)",
        ),
        "message": _select(
            db, "messages", f"sent_at >= {frm} AND sent_at < {to} AND final_status != 'FAILED'",
            spec, "sent_at", product="'message'", key="t.message_id",
            incarnation="toUInt64(0)", caller="t.sender",
            callee="t.recipient", direction="toString(t.direction)",
            disposition="toString(t.final_status)", duration_ms="toInt64(0)",
            ended_ms="toUnixTimestamp64Milli(assumeNotNull(t.sent_at))",
            node_id="toString(t.node_id)", app_key="toString(t.app_key)",
        ),
    }  # fmt: skip
    union = " UNION ALL ".join(selects[p] for p in products)
    return f"SELECT * FROM ({union}) ORDER BY product, key, incarnation"


def read_sessions(
    client: Any, db: str, spec: ExportSpec, products: tuple[str, ...]
) -> Iterator[tuple[Session, Line]]:
    """Each session of the period: what ``rate`` needs and the line's facts (unrated yet)."""
    with client.query_row_block_stream(sessions_sql(db, spec, products)) as blocks:
        for block in blocks:
            for row in block:
                yield _session(dict(zip(COLUMNS, row, strict=True)))


def _session(r: dict[str, Any]) -> tuple[Session, Line]:
    product, key, incarnation = str(r["product"]), str(r["key"]), int(r["incarnation"])
    # a reused call or stream id is a new session (docs/processing.md, key reuse)
    suffix = f"#{incarnation}" if incarnation else ""
    duration = max(0, int(r["duration_ms"]))
    session = Session(f"{key}{suffix}", product, r["app_key"], r["direction"], r["callee"],
                      int(r["created_ms"]), r["started_ms"], r["ended_ms"], duration)  # fmt: skip
    line = Line(
        session_key=f"{FAMILY.get(product, 'stream')}:{key}{suffix}", product=product,
        group_keys=tuple(r["group_keys"]), node_id=r["node_id"], app_key=r["app_key"],
        caller=r["caller"], callee=r["callee"], direction=r["direction"],
        disposition=r["disposition"], created_ms=int(r["created_ms"]),
        started_ms=r["started_ms"], ended_ms=r["ended_ms"], duration_ms=duration,
        section="unrated", incarnation=incarnation,
    )  # fmt: skip
    return session, line
