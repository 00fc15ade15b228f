"""A CLI command imports what it uses: ``--help``, ``simulate`` and ``replay`` load no web
framework and no HTTP client (FastAPI alone took 0.2 s of every command's start before the
read side's guard moved to ``ingest.read_guard``).

Each case runs in a fresh interpreter (this test process has imported everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from events.catalog import resolve
from events.envelope import encode, make

WEB = ("fastapi", "starlette", "pydantic", "uvicorn", "httpx")
DATABASE = ("clickhouse_connect", "chdb")
PROBE = """
import json, sys
from wcs_analytics.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(m.split(".")[0] for m in sys.modules)}))
"""


def _loaded(args: list[str], cwd: Path) -> tuple[object, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


@pytest.mark.parametrize("args", [["--help"], ["replay", "--help"], ["export", "--help"]])
def test_help_loads_neither_the_web_side_nor_the_database_driver(
    args: list[str], tmp_path: Path
) -> None:
    code, modules = _loaded(args, tmp_path)
    assert code == 0
    assert not modules & {*WEB, *DATABASE}, sorted(modules & {*WEB, *DATABASE})


def test_simulate_to_a_file_loads_no_web_side(tmp_path: Path) -> None:
    out = tmp_path / "trace.ndjson"
    code, modules = _loaded(
        ["simulate", "--scale", "1", "--minutes", "6", "--out", str(out)], tmp_path
    )
    assert code == 0 and out.stat().st_size > 0
    assert not modules & set(WEB), sorted(modules & set(WEB))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_replay_loads_the_database_driver_and_no_web_side(jobs: str, tmp_path: Path) -> None:
    trace = tmp_path / "trace.ndjson"
    body = {"nodeId": "n1", "sessionId": "s1", "appKey": "defaultApp", "status": "ESTABLISHED"}
    lines = [
        encode(make(resolve("ConnectionStatusEvent"), body, 1_767_225_600_000 + i, f"e{i}"))
        for i in range(3)
    ]
    trace.write_bytes(b"\n".join(lines) + b"\n")
    code, modules = _loaded(
        ["replay", str(trace), "--data-dir", str(tmp_path / "data"), "--jobs", jobs], tmp_path
    )
    assert code == 0
    assert set(DATABASE) <= modules  # the probe sees what a replay imports
    assert not modules & set(WEB), sorted(modules & set(WEB))
