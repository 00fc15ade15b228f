"""SQL that renders a recorded run from ``export_lines``: rated CDR, rated billing and the
corrections between two runs. ClickHouse formats the output (csv, jsonl, parquet) exactly
as for the plain exports. Amounts are cast to the run's decimals; unrated sessions have
NULL cost. ``correction_sql`` is ``ledger.diff`` in SQL (tested to agree).
"""

from __future__ import annotations

from sinks.exports.ledger_store import RunRecord
from sinks.schema import check_identifier

VIEWERS = "('play', 'hls', 'rtsp')"
CDR_COLUMNS = (
    "section",
    "call_id",
    "incarnation",
    "node_id",
    "app_key",
    "caller",
    "callee",
    "direction",
    "disposition",
    "created_at",
    "answered_at",
    "ended_at",
    "talk_ms",
    "deck_revision",
    "rate_id",
    "prefix",
    "currency",
    "tiers",
    "billed_seconds",
    "attempt_fee",
    "connect_fee",
    "cost",
    "reason",
)
BILLING_MEASURES = (
    "call_attempts", "answered_calls", "talk_seconds", "publish_streams", "publish_minutes",
    "viewer_streams", "viewer_minutes", "messages_sent", "billed_seconds", "fees", "cost",
)  # fmt: skip
CORRECTION_COLUMNS = (
    "change", "currency", "old_section", "new_section", "old_deck_revision",
    "new_deck_revision", "old_rate_id", "new_rate_id", "old_billed_seconds",
    "new_billed_seconds", "old_cost", "new_cost", "cost_diff", "old_reason", "new_reason",
)  # fmt: skip


def _lines(db: str, export_id: str) -> str:
    check_identifier(db)
    if not export_id.isalnum():
        raise ValueError(f"not an export id: {export_id!r}")
    return f"(SELECT * FROM {db}.export_lines FINAL WHERE export_id = '{export_id}')"


def _money(expr: str, decimals: int, rated: str = "section = 'rated'") -> str:
    return f"if({rated}, CAST({expr} AS Decimal(38, {int(decimals)})), NULL)"


def cdr_sql(db: str, run: RunRecord) -> str:
    rated = "section = 'rated'"
    exprs = {
        # session_key is "call:<call_id>" or "call:<call_id>#<incarnation>"
        "call_id": "if(incarnation = 0, substring(session_key, 6), "
        "substring(session_key, 6, length(session_key) - 6 - length(toString(incarnation))))",
        "answered_at": "started_at",
        "talk_ms": "duration_ms",
        "billed_seconds": f"if({rated}, billed_seconds, NULL)",
        "attempt_fee": _money("attempt_fee", run.fee_decimals),
        "connect_fee": _money("connect_fee", run.fee_decimals),
        "cost": _money("cost", run.decimals),
    }
    columns = ", ".join(f"{exprs.get(c, c)} AS {c}" for c in CDR_COLUMNS)
    return (
        f"SELECT {columns} FROM {_lines(db, run.export_id)} WHERE product = 'call' "
        "ORDER BY section, ended_at NULLS LAST, session_key"
    )


def billing_sql(db: str, run: RunRecord, group_by: tuple[str, ...]) -> str:
    keys = [f"group_keys[{i + 1}]" for i in range(len(group_by))]
    minutes = "CAST(intDiv(sumIf(duration_ms, {}) + 30, 60) AS Decimal64(3)) / 1000"
    billed = "section = 'billed'"
    measures = {
        "call_attempts": "countIf(product = 'call')",
        "answered_calls": "countIf(product = 'call' AND started_at IS NOT NULL)",
        "talk_seconds": "CAST(sumIf(duration_ms, product = 'call') AS Decimal64(3)) / 1000",
        "publish_streams": "countIf(product = 'publish')",
        "publish_minutes": minutes.format("product = 'publish'"),
        "viewer_streams": f"countIf(product IN {VIEWERS})",
        "viewer_minutes": minutes.format(f"product IN {VIEWERS}"),
        "messages_sent": "countIf(product = 'message')",
        "billed_seconds": f"if({billed}, sum(billed_seconds), NULL)",
        "fees": _money("sum(attempt_fee + connect_fee)", run.fee_decimals, billed),
        "cost": _money("sum(cost)", run.decimals, billed),
    }
    groups = [f"{k} AS `{name}`" for k, name in zip(keys, group_by, strict=True)]
    order = ", ".join(["section", *keys, "currency", "reason"])
    select = ", ".join(
        ["if(section = 'rated', 'billed', 'unrated') AS section", *groups, "currency", "reason"]
        + [f"{measures[m]} AS {m}" for m in BILLING_MEASURES]
    )
    return f"SELECT {select} FROM {_lines(db, run.export_id)} GROUP BY {order} ORDER BY {order}"


def billing_columns(group_by: tuple[str, ...]) -> tuple[str, ...]:
    return ("section", *group_by, "currency", "reason", *BILLING_MEASURES)


def correction_sql(db: str, run: RunRecord, group_by: tuple[str, ...]) -> str:
    """Per changed session (and currency, when it changed): old and new as billed."""
    split = "o_section = 'rated' AND n_section = 'rated' AND o_currency != n_currency"
    pairs = (
        "SELECT o.session_key AS o_key, n.session_key AS n_key, o.product AS o_product, "
        "n.product AS n_product, o.group_keys AS o_groups, n.group_keys AS n_groups, "
        + ", ".join(f"o.{c} AS o_{c}, n.{c} AS n_{c}" for c in _COMPARED)
        + f" FROM {_lines(db, run.corrects)} AS o FULL OUTER JOIN {_lines(db, run.export_id)}"
        " AS n ON o.session_key = n.session_key WHERE o.fingerprint != n.fingerprint"
    )
    old_money, new_money = "o_section = 'rated' AND part != 2", "n_section = 'rated' AND part != 1"
    old_cost = f"if({old_money}, o_cost, toDecimal128(0, 12))"
    new_cost = f"if({new_money}, n_cost, toDecimal128(0, 12))"
    exprs = {
        "change": "multiIf(o_key = '', 'added', n_key = '', 'removed', 'changed')",
        "currency": "multiIf(part = 1, o_currency, part = 2, n_currency, "
        "n_section = 'rated', n_currency, o_section = 'rated', o_currency, '')",
        "old_cost": f"CAST({old_cost} AS Decimal(38, {run.decimals}))",
        "new_cost": f"CAST({new_cost} AS Decimal(38, {run.decimals}))",
        "cost_diff": f"CAST({new_cost} - {old_cost} AS Decimal(38, {run.decimals}))",
    }
    for c in ("section", "deck_revision", "rate_id", "billed_seconds", "reason"):
        exprs[f"old_{c}"] = f"if(part = 2, {_blank(c)}, o_{c})"
        exprs[f"new_{c}"] = f"if(part = 1, {_blank(c)}, n_{c})"
    groups = [
        f"if(n_key != '', n_groups, o_groups)[{i + 1}] AS `{name}`"
        for i, name in enumerate(group_by)
    ]
    select = ", ".join(
        ["if(n_key != '', n_key, o_key) AS session_key",
         "if(n_key != '', n_product, o_product) AS product", *groups]
        + [f"{exprs[c]} AS {c}" for c in CORRECTION_COLUMNS]
    )  # fmt: skip
    # ARRAY JOIN here, not arrayJoin() in the join: the latter with ORDER BY loops chDB
    # 26.9's plan optimizer (TOO_MANY_QUERY_PLAN_OPTIMIZATIONS)
    return (
        f"SELECT {select} FROM ({pairs}) ARRAY JOIN if({split}, [1, 2], [0]) AS part "
        "ORDER BY session_key, part"
    )


_COMPARED = ("section", "deck_revision", "rate_id", "billed_seconds", "reason", "currency", "cost")


def _blank(column: str) -> str:
    return "toInt64(0)" if column == "billed_seconds" else "''"


def correction_columns(group_by: tuple[str, ...]) -> tuple[str, ...]:
    return ("session_key", "product", *group_by, *CORRECTION_COLUMNS)
