"""The export SQL over ``calls``/``streams``/``messages`` FINAL; every column defined once.

Period rule (docs/exports.md): a session belongs to ``[from, to)`` by its **end**
(``ended_at``), so every finished call or stream is billed in exactly one period and a
period's file never changes once its sessions are over. Messages count by ``sent_at``.
Sessions started but not ended at ``to`` (``ended_at`` NULL or >= ``to``) form the
``open`` section of the billing export: reported with their time so far, not billed.
"""

from __future__ import annotations

from sinks.exports.rounding import billable_sql
from sinks.exports.spec import ExportSpec, custom_field
from sinks.schema import check_identifier

VIEWER_KINDS = "('play', 'hls', 'rtsp')"
_ZERO = "toInt64(0)"
# per-item measures of the billing UNION, in this order
_MEASURES = ("calls", "talk_ms", "billable_s", "pub_ms", "view_ms", "pubs", "views", "sent")
# billing output: (column, aggregate over the items); group columns come before these
BILLING_COLUMNS = (
    ("answered_calls", "sum(calls)"),
    ("talk_seconds", "CAST(sum(talk_ms) AS Decimal64(3)) / 1000"),
    ("billable_seconds", "sum(billable_s)"),
    ("publish_streams", "sum(pubs)"),
    ("publish_minutes", "CAST(intDiv(sum(pub_ms) + 30, 60) AS Decimal64(3)) / 1000"),
    ("viewer_streams", "sum(views)"),
    ("viewer_minutes", "CAST(intDiv(sum(view_ms) + 30, 60) AS Decimal64(3)) / 1000"),
    ("messages_sent", "sum(sent)"),
)
CALL_COLUMNS = (
    "call_id", "node_id", "app_key", "session_id", "caller", "callee", "incoming", "has_video",
    "media_provider", "created_at", "ringing_at", "answered_at", "ended_at", "status",
    "disposition", "pdd_ms", "duration_ms", "talk_ms", "hold_ms", "sip_status", "info",
    "closed_by", "custom",
)  # fmt: skip
CDR_COLUMNS = (*CALL_COLUMNS, "billable_seconds")
SDR_COLUMNS = (  # (StreamRecord field, expression over the finished stream s)
    ("start_ms", "toUnixTimestamp64Milli(coalesce(s.started_at, s.created_at))"),
    ("media_provider", "s.media_provider"),
    ("name", "s.name"),
    ("media_session_id", "s.media_session_id"),
    ("duration_ms", "coalesce(s.lifetime_ms, 0)"),
    ("final_status", "s.final_status"),
    ("info", "s.info"),
    ("publish", "s.kind = 'publish' OR (s.kind = '' AND s.published)"),
    ("subscribers", "coalesce(sub.viewers, 0)"),
)


def ms(epoch_ms: int) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({int(epoch_ms)}), 'UTC')"


def _in_period(column: str, spec: ExportSpec) -> str:
    return f"{column} >= {ms(spec.from_ms)} AND {column} < {ms(spec.to_ms)}"


def _open_at_to(start: str, spec: ExportSpec) -> str:
    """Started before ``to`` and not ended before it (inner WHERE: bare column names)."""
    to = ms(spec.to_ms)
    return f"{start} < {to} AND (ended_at IS NULL OR ended_at >= {to})"


def _key(key: str, table: str) -> str:
    """Group key expression over the entity ``t`` and its connection ``c``."""
    field = custom_field(key)
    if field is not None:
        source = "c.custom" if table == "messages" else "t.custom"
        return (
            f"if(JSONType({source}, '{field}') = 'String', JSONExtractString({source}, '{field}'),"
            f" JSONExtractRaw({source}, '{field}'))"
        )
    if key == "sip_login":
        return "c.sip_login"
    if key == "caller":
        return {"calls": "t.caller", "messages": "t.sender"}.get(table, "''")
    return f"t.{key}"


def _source(db: str, table: str, where: str, spec: ExportSpec) -> str:
    """``t`` = the table FINAL filtered; joined to its connection when a key needs it."""
    sql = f"(SELECT * FROM {db}.{table} FINAL WHERE {where}) AS t"
    if "sip_login" in spec.group_by or (
        table == "messages" and any(map(custom_field, spec.group_by))
    ):
        sql += (
            " LEFT JOIN (SELECT node_id, session_id, sip_login, custom"
            f" FROM {db}.connections FINAL) AS c"
            " ON t.node_id = c.node_id AND t.session_id = c.session_id"
        )
    return sql


def _items(db: str, table: str, section: str, where: str, spec: ExportSpec, **m: str) -> str:
    keys = [f"toString({_key(k, table)}) AS g{i}" for i, k in enumerate(spec.group_by)]
    measures = [f"toInt64({m.get(name, _ZERO)}) AS {name}" for name in _MEASURES]
    return (
        f"SELECT '{section}' AS section, {', '.join(keys + measures)} "
        f"FROM {_source(db, table, where, spec)}"
    )


def _billed_message(spec: ExportSpec) -> str:
    """A sent message counts unless its SIP MESSAGE failed (``failed_at``), by default."""
    return "1" if spec.bill_failed_messages else "if(t.failed_at IS NULL, 1, 0)"


def billing_sql(db: str, spec: ExportSpec) -> str:
    """Per (section, group keys): billed sessions of the period, then those open at ``to``."""
    check_identifier(db)
    pub, view = "t.kind = 'publish'", f"t.kind IN {VIEWER_KINDS}"
    talk, life = "coalesce(t.talk_ms, 0)", "coalesce(t.lifetime_ms, 0)"
    to_ms = f"toInt64({int(spec.to_ms)})"
    answered_so_far = f"{to_ms} - toUnixTimestamp64Milli(assumeNotNull(t.answered_at))"
    started_so_far = f"{to_ms} - toUnixTimestamp64Milli(assumeNotNull(t.started_at))"
    stream = f"started_at IS NOT NULL AND (kind = 'publish' OR kind IN {VIEWER_KINDS})"
    ended, sent = _in_period("ended_at", spec), _in_period("sent_at", spec)
    items = [
        _items(db, "calls", "billed", f"answered_at IS NOT NULL AND {ended}", spec,
               calls="1", talk_ms=talk, billable_s=billable_sql(talk, spec.rounding)),
        _items(db, "calls", "open", _open_at_to("answered_at", spec), spec,
               calls="1", talk_ms=answered_so_far),
        _items(db, "streams", "billed", f"{stream} AND {ended}", spec, pubs=pub, views=view,
               pub_ms=f"if({pub}, {life}, 0)", view_ms=f"if({view}, {life}, 0)"),
        _items(db, "streams", "open", f"{stream} AND {_open_at_to('started_at', spec)}", spec,
               pubs=pub, views=view, pub_ms=f"if({pub}, {started_so_far}, 0)",
               view_ms=f"if({view}, {started_so_far}, 0)"),
        _items(db, "messages", "billed", sent, spec, sent=_billed_message(spec)),
    ]  # fmt: skip
    groups = ", ".join(f"g{i} AS `{k}`" for i, k in enumerate(spec.group_by))
    order = ", ".join(f"g{i}" for i in range(len(spec.group_by)))
    aggregates = ", ".join(f"{expr} AS {name}" for name, expr in BILLING_COLUMNS)
    return (
        f"SELECT section, {groups}, {aggregates} FROM ({' UNION ALL '.join(items)}) "
        f"GROUP BY section, {order} ORDER BY section, {order}"
    )


def billing_columns(spec: ExportSpec) -> tuple[str, ...]:
    return ("section", *spec.group_by, *(name for name, _ in BILLING_COLUMNS))


def cdr_sql(db: str, spec: ExportSpec) -> str:
    """Every call that ended in the period (any disposition), by ``ended_at``, ``call_id``."""
    check_identifier(db)
    billable = billable_sql("coalesce(talk_ms, 0)", spec.rounding)
    columns = ", ".join((*CALL_COLUMNS, f"{billable} AS billable_seconds"))
    return (
        f"SELECT {columns} FROM {db}.calls FINAL WHERE {_in_period('ended_at', spec)} "
        "ORDER BY ended_at, call_id"
    )


def sdr_sql(db: str, spec: ExportSpec) -> str:
    """Streams that ended in the period; viewers of a publisher = play/hls/rtsp streams of the
    same name on the same node whose [started_at, ended_at) overlaps the publisher's."""
    check_identifier(db)
    cols = "media_session_id, node_id, name, started_at, ended_at"
    publishers = (
        f"SELECT {cols} FROM {db}.streams FINAL WHERE kind = 'publish' "
        f"AND started_at IS NOT NULL AND {_in_period('ended_at', spec)}"
    )
    viewers = (
        f"SELECT {cols} FROM {db}.streams FINAL WHERE kind IN {VIEWER_KINDS} "
        f"AND started_at IS NOT NULL AND started_at < {ms(spec.to_ms)}"
    )
    overlap = "v.started_at < p.ended_at AND (v.ended_at IS NULL OR v.ended_at > p.started_at)"
    counts = (
        f"SELECT p.media_session_id AS media_session_id, countIf({overlap}) AS viewers "
        f"FROM ({publishers}) AS p INNER JOIN ({viewers}) AS v "
        "ON p.node_id = v.node_id AND p.name = v.name GROUP BY p.media_session_id"
    )
    columns = ", ".join(f"{expr} AS {name}" for name, expr in SDR_COLUMNS)
    return (
        f"SELECT {columns} FROM (SELECT * FROM {db}.streams FINAL "
        f"WHERE {_in_period('ended_at', spec)}) AS s "
        f"LEFT JOIN ({counts}) AS sub ON s.media_session_id = sub.media_session_id "
        "ORDER BY start_ms, s.media_session_id"
    )


def group_keys_sql(table: str, spec: ExportSpec) -> str:
    """``[toString(key), ...]`` of ``spec.group_by`` over ``t``/``c`` (rated exports)."""
    return "[" + ", ".join(f"toString({_key(k, table)})" for k in spec.group_by) + "]"


def source_sql(db: str, table: str, where: str, spec: ExportSpec) -> str:
    """The filtered ``t`` FINAL (and its connection ``c`` when a group key needs it)."""
    return _source(db, table, where, spec)
