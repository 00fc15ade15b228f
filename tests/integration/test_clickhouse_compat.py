"""sinks/clickhouse_compat.py against the installed clickhouse-connect: the lazy pandas probe
is where the workaround expects it, and an insert after it imports no pandas."""

from __future__ import annotations

import subprocess
import sys

import pytest
from clickhouse_connect.driver import options

pytestmark = pytest.mark.integration


def test_the_lazy_pandas_attribute_is_still_resolved_by_module_getattr() -> None:
    assert "pd" in options._PANDAS_ATTRS  # the hook the workaround answers
    assert callable(getattr(options, "__getattr__", None))


def test_an_insert_imports_no_pandas_after_the_workaround() -> None:
    code = """
import sys
from sinks.clickhouse_compat import skip_pandas_probe
skip_pandas_probe()
import clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://:memory:")
client.command("CREATE TABLE t (x UInt32) ENGINE = Memory")
client.insert("t", [[1], [2]], column_names=["x"])
assert client.command("SELECT sum(x) FROM t") == 3
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
