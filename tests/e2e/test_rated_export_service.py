"""A rated export through a running service (its --rates-dir deck), then from the stopped data
directory with the same deck: the same export id, status ``same`` and the same bytes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.e2e.service import Service, _env, cli

pytestmark = pytest.mark.e2e

EXAMPLE_DECK = Path(__file__).resolve().parents[2] / "deploy" / "rates"
EXPORT = [sys.executable, "-m", "wcs_analytics.cli", "export", "billing"]
PERIOD = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:05:00Z")


def export(out: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*EXPORT, *PERIOD, "--out", str(out), *args],
        capture_output=True,
        env=_env(None),
        timeout=300,
        check=False,
    )


def test_rated_export_through_the_service_then_from_the_data_dir(
    tmp_path: Path, service_factory: list[Service]
) -> None:
    traffic = tmp_path / "traffic.ndjson"
    cli("simulate", "--out", str(traffic), "--seed", "4", "--scale", "0.3")
    data = tmp_path / "data"
    cli("replay", str(traffic), "--data-dir", str(data))
    decks = tmp_path / "decks"
    shutil.copytree(EXAMPLE_DECK, decks / "example")
    service = Service(data, args=("--rates-dir", str(decks)))
    service_factory.append(service)
    service.start()

    live = export(tmp_path / "live.csv", "--deck", "example", "--service", service.url)
    assert live.returncode == 0, live.stderr.decode()
    assert service.stop() == 0
    stopped = export(
        tmp_path / "stopped.csv", "--deck", str(decks / "example"), "--data-dir", str(data)
    )
    assert stopped.returncode == 0, stopped.stderr.decode()

    first = orjson.loads((tmp_path / "live.csv.manifest.json").read_bytes())
    again = orjson.loads((tmp_path / "stopped.csv.manifest.json").read_bytes())
    assert (first["status"], again["status"]) == ("first", "same")
    assert first["export_id"] == again["export_id"]
    assert first["totals"] == again["totals"] and first["totals"]["cost"]["EUR"] != "0.00"
    assert (tmp_path / "live.csv").read_bytes() == (tmp_path / "stopped.csv").read_bytes()
    rows = (tmp_path / "live.csv").read_text().splitlines()
    assert rows[0].startswith("section,app_key,currency,reason,call_attempts,answered_calls,")
    assert any(row.startswith('"unrated"') and ',"open",' in row for row in rows)
