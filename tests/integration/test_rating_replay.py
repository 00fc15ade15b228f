"""Replaying the same WCS events twice changes no cost: simulated traffic replayed once into
one database and twice into another gives identical rated lines (same content digest)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sinks.exports import make_spec
from sinks.exports.ledger import content_digest, totals
from sinks.exports.rated import rate_lines
from sinks.rating.load import parse_deck
from tests.integration.rating_decks import R1, texts
from wcs_analytics import cli
from wcs_analytics.replay import replay
from wcs_analytics.settings import load
from wcs_analytics.store import Store

pytestmark = pytest.mark.integration


def _replay(trace: Path, dsn: str, db: str, data_dir: Path) -> None:
    settings = replace(load({}), clickhouse=dsn, database=db, data_dir=data_dir)
    store = Store(settings)  # continues the state stored in the database, if any
    try:
        replay(store, trace)
    finally:
        store.close()


def test_replaying_the_same_events_twice_changes_no_cost(
    ch_client: Any, chdb_dsn: str, fresh_db: str, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.ndjson"
    assert cli.main(["simulate", "--out", str(trace), "--minutes", "6", "--seed", "11"]) == 0
    twice = f"{fresh_db}_twice"
    try:
        _replay(trace, chdb_dsn, fresh_db, tmp_path / "once")
        for data_dir in ("a", "b"):
            _replay(trace, chdb_dsn, twice, tmp_path / data_dir)
        deck = parse_deck(texts(R1))
        for kind in ("billing", "cdr"):
            spec = make_spec(kind, "2026-01-01", "2026-01-02")
            once = rate_lines(ch_client, fresh_db, spec, deck)
            again = rate_lines(ch_client, twice, spec, deck)
            assert content_digest(once) == content_digest(again), kind
            total = totals(once)
            assert total.sessions - total.unrated > 20 and total.cost["EUR"] > 0
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS {twice} SYNC")
