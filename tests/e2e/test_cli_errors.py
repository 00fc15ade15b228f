"""CLI errors are one line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.service import CLI

pytestmark = pytest.mark.e2e


def test_query_with_a_sql_error_prints_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "query", "--data-dir", str(tmp_path / "data"), "SELEC 1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("wcs-analytics query: ") and "SYNTAX_ERROR" in lines[0]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_replay_into_an_unreachable_server_is_one_error_line(tmp_path: Path, jobs: str) -> None:
    """One error line, no traceback, no password; with --jobs no wait for the part processes
    (they see their pipes close at once)."""
    trace = tmp_path / "t.ndjson"
    trace.write_text('{"v":1}\n')
    started = time.monotonic()
    done = subprocess.run(
        [*CLI, "replay", str(trace), "--jobs", jobs, "--log-level", "error",
         "--clickhouse", "http://default:s3cret-pw@127.0.0.1:1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and time.monotonic() - started < 20
    assert "Traceback" not in done.stderr, done.stderr  # the HTTP library's own warnings pass
    last = done.stderr.splitlines()[-1]
    assert last.startswith("wcs-analytics replay: cannot connect to http://127.0.0.1:1"), last
    assert "s3cret-pw" not in done.stderr + done.stdout
