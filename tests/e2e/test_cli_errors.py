"""CLI errors are one line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
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
