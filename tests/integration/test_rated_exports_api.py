"""Rated exports through the CLI (``wcs-analytics export --deck``) and the read API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.migrations import migrate
from sinks.writer import ClickHouseWriter
from tests.integration.export_rows import FIRST, FROM, LATER, TO, talk
from tests.integration.kpi_rows import M0
from tests.integration.rating_decks import R1, write_deck
from wcs_analytics import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def db(ch_client: Any, fresh_db: str) -> Iterator[str]:
    migrate(ch_client, fresh_db)
    writer = ClickHouseWriter(ch_client, fresh_db, now_ms=lambda: M0)
    writer.add([*FIRST, *LATER])
    writer.flush()
    yield fresh_db


def late_end(client: Any, db: str) -> None:
    writer = ClickHouseWriter(client, db, now_ms=lambda: M0)
    writer.add([talk("c3", 9, 18, 20, 110, caller="bob", session="s-bob")])
    writer.flush()


def test_cli_writes_file_manifest_and_correction(
    ch_client: Any, db: str, chdb_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deck = write_deck(tmp_path / "deck", R1)
    out = tmp_path / "billing.csv"
    argv = [
        "export",
        "billing",
        "--deck",
        str(deck),
        "--from",
        str(FROM),
        "--to",
        str(TO),
        "--clickhouse",
        chdb_dsn,
        "--database",
        db,
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    first = orjson.loads((tmp_path / "billing.csv.manifest.json").read_bytes())
    assert first["status"] == "first" and first["totals"]["cost"] == {"EUR": "3.49"}
    assert first["totals"]["rows"] == 3 == out.read_text().count("\n") - 1
    assert not (tmp_path / "billing.csv.correction.csv").exists()
    late_end(ch_client, db)
    assert cli.main(argv) == 0
    second = orjson.loads((tmp_path / "billing.csv.manifest.json").read_bytes())
    assert (second["status"], second["corrects"]) == ("correction", first["export_id"])
    assert second["correction"] == {"lines": 1, "cost_diff": {"EUR": "0.30"}}
    assert second["previous_totals"]["cost"] == {"EUR": "3.49"}
    assert second["totals"]["cost"] == {"EUR": "3.79"}
    correction = (tmp_path / "billing.csv.correction.csv").read_text().splitlines()
    assert len(correction) == 2 and correction[1].startswith('"call:c3","call","A","changed"')
    assert "correction written to" in capsys.readouterr().err
    # bad decks and options are refused with exit code 2, naming the problem
    (deck / "rev0.toml").write_text(R1.replace('price = "0.60"', "price = 0.60"))
    assert cli.main(argv) == 2
    assert "rev0.toml:8: price: amounts are written as text" in capsys.readouterr().err
    assert cli.main([*argv, "--rounding", "1/1"]) == 2


def test_api_runs_records_and_corrections(
    ch_client: Any, db: str, chdb_dsn: str, tmp_path: Path
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from wcs_analytics.api import ReadAccess, build_routers

    write_deck(tmp_path / "decks" / "main", R1)
    access = ReadAccess(chdb_dsn, db)
    app = FastAPI()
    for router in build_routers(access, tmp_path / "decks"):
        app.include_router(router)
    params = {"from": str(FROM), "to": str(TO), "deck": "main", "format": "jsonl"}
    try:
        with TestClient(app) as http:
            first = http.post("/api/export/cdr/rated", params=params)
            assert first.status_code == 200, first.text
            export_id = first.headers["x-export-id"]
            assert first.headers["x-export-status"] == "first"
            lines = [orjson.loads(line) for line in first.text.splitlines()]
            assert [r["cost"] for r in lines if r["call_id"] == "c3"] == [0.65]
            again = http.post("/api/export/cdr/rated", params=params)
            assert again.content == first.content
            assert again.headers["x-export-status"] == "same"
            late_end(ch_client, db)
            second = http.post("/api/export/cdr/rated", params=params)
            assert second.headers["x-export-corrects"] == export_id
            new_id = second.headers["x-export-id"]
            manifest = http.get(f"/api/export-runs/{new_id}/manifest").json()
            assert manifest["correction"] == {"lines": 1, "cost_diff": {"EUR": "0.30"}}
            fix = http.get(f"/api/export-runs/{new_id}/correction", params={"format": "jsonl"})
            assert orjson.loads(fix.text)["cost_diff"] == 0.3
            listed = http.get(
                "/api/export-runs", params={"kind": "cdr", "from": str(FROM), "to": str(TO)}
            ).json()
            assert [(r["export_id"], r["status"]) for r in listed] == [
                (export_id, "first"),
                (export_id, "same"),
                (new_id, "correction"),
            ]
            assert http.get(f"/api/export-runs/{export_id}/correction").status_code == 404
            assert http.get("/api/export-runs/nope/manifest").status_code == 404
            bad = http.post("/api/export/cdr/rated", params=params | {"deck": "../etc"})
            assert bad.status_code == 400 and "deck name" in bad.json()["error"]
            missing = http.post("/api/export/cdr/rated", params=params | {"deck": "other"})
            assert missing.status_code == 400 and "not a directory" in missing.json()["error"]
            sdr = http.post("/api/export/sdr/rated", params=params | {"format": "sdr"})
            assert sdr.status_code == 422  # kind is an enum of the API: billing or cdr
    finally:
        access.close()
    off = FastAPI()
    for router in build_routers(ReadAccess(chdb_dsn, db)):
        off.include_router(router)
    with TestClient(off) as http:
        answer = http.post("/api/export/cdr/rated", params=params)
        assert answer.status_code == 400 and "--rates-dir" in answer.json()["error"]
