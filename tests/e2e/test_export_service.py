"""Exports from a real ``run`` service: through its API while it runs, then from the stopped
data directory; both must give byte-identical files, and so must a re-run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.service import Service, _env, cli

pytestmark = pytest.mark.e2e

EXPORT = [sys.executable, "-m", "wcs_analytics.cli", "export"]
# the simulation covers 2026-01-01 00:00-00:10 UTC; cut it in the middle so sessions are open
PERIOD = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:05:00Z")
EXPORTS = {
    "billing.csv": ("billing", "--group-by", "app_key,caller", "--rounding", "30/6"),
    "billing.parquet": ("billing", "--format", "parquet"),
    "cdr.jsonl": ("cdr", "--format", "jsonl"),
    "sdr.txt": ("sdr",),
}


def export(out: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*EXPORT, *args, *PERIOD, "--out", str(out)],
        capture_output=True,
        env=_env(None),
        timeout=300,
        check=False,
    )


def export_all(target: Path, *source: str) -> dict[str, bytes]:
    target.mkdir()
    files = {}
    for name, args in EXPORTS.items():
        done = export(target / name, *args, *source)
        assert done.returncode == 0, done.stderr.decode()
        assert b"export: " in done.stderr  # the closing progress line
        files[name] = (target / name).read_bytes()
    return files


def test_exports_through_the_service_and_from_the_stopped_data_dir(
    tmp_path: Path, service_factory: list[Service]
) -> None:
    traffic = tmp_path / "traffic.ndjson"
    cli("simulate", "--out", str(traffic), "--seed", "4", "--scale", "0.3")
    data = tmp_path / "data"
    cli("replay", str(traffic), "--data-dir", str(data))
    service = Service(data)
    service_factory.append(service)
    service.start()

    live = export_all(tmp_path / "live", "--service", service.url)
    busy = export(tmp_path / "busy.csv", "billing", "--data-dir", str(data))
    assert busy.returncode == 3
    assert b"--service" in busy.stderr
    assert service.stop() == 0

    stopped = export_all(tmp_path / "stopped", "--data-dir", str(data))
    again = export_all(tmp_path / "again", "--data-dir", str(data))
    assert live == stopped == again

    billing = live["billing.csv"].decode().splitlines()
    assert billing[0].startswith("section,app_key,caller,answered_calls,talk_seconds,")
    assert any(line.startswith('"billed"') for line in billing)
    assert any(line.startswith('"open"') for line in billing)
    assert live["billing.parquet"][:4] == b"PAR1"
    assert live["cdr.jsonl"].count(b"\n") > 0
    sdr = live["sdr.txt"].decode().splitlines()
    assert sdr and all(line.endswith(";") and line.count(";") == 9 for line in sdr)
    assert {line.split(";")[7] for line in sdr} == {"PUBLISH", "SUBSCRIBE"}
