"""The export ledger tables, defined once (DDL and insert columns): ``export_runs`` (one
row per export run, including identical re-runs) and ``export_lines`` (each session as a
run billed it, stored once per export id). Created by migration 5 (``sinks/migration_0005_
export_ledger.py``); see docs/rating.md and docs/schema.md.
"""

from __future__ import annotations

from typing import Final

from events.tables import LC, OPT_TIME, TIME, Table

MONEY: Final = "Decimal(38, 12)"

EXPORT_RUNS = Table(
    "export_runs",
    (
        ("export_id", "String"),
        ("chain", "String"),  # kind + period + parameters: runs corrected under one key
        ("kind", LC),
        ("period_from", TIME),
        ("period_to", TIME),
        ("parameters", "String"),  # canonical JSON
        ("status", LC),  # first, same, correction
        ("corrects", "String"),  # the export id this run corrects ('' for a first run)
        ("deck_digest", "String"),
        ("deck_revisions", "Array(String)"),
        ("content_digest", "String"),
        ("rows", "UInt64"),
        ("sessions", "UInt64"),
        ("unrated", "UInt64"),
        ("billed_seconds", "Int64"),
        ("totals", "String"),  # JSON: cost per currency, exact decimal text
        ("decimals", "UInt8"),  # of a cost (the deck's)
        ("fee_decimals", "UInt8"),  # of fees as the output shows them
        ("created_at", TIME),
    ),
    order_by=("chain", "created_at", "export_id"),
    engine="MergeTree",
)

EXPORT_LINES = Table(
    "export_lines",
    (
        ("export_id", "String"),
        ("session_key", "String"),
        ("incarnation", "UInt64"),
        ("product", LC),
        ("group_keys", "Array(String)"),
        ("node_id", LC),
        ("app_key", LC),
        ("caller", "String"),
        ("callee", "String"),
        ("direction", LC),
        ("disposition", LC),
        ("created_at", TIME),
        ("started_at", OPT_TIME),
        ("ended_at", OPT_TIME),
        ("duration_ms", "Int64"),
        ("section", LC),
        ("reason", "String"),
        ("deck_revision", LC),
        ("rate_id", "String"),
        ("prefix", "String"),
        ("currency", LC),
        ("tiers", "String"),
        ("billed_seconds", "Int64"),
        ("attempt_fee", MONEY),
        ("connect_fee", MONEY),
        ("cost", MONEY),
        ("fingerprint", "String"),
    ),
    order_by=("export_id", "session_key"),
    engine="ReplacingMergeTree",  # a retried insert of the same run collapses
)

LEDGER_TABLES: Final = {t.name: t for t in (EXPORT_RUNS, EXPORT_LINES)}
