"""A FAILED spike through the real CLI (``replay``: envelopes with chosen received_at, so
event time is exact) into chDB: exactly one firing alert row, resolved by a later replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from events.catalog import resolve
from events.envelope import make
from tests.e2e.service import cli, query

pytestmark = pytest.mark.e2e

W = 60_000
T0 = 1_699_999_980_000  # a minute boundary
NODE = "node-1@192.0.2.10"


def call(n: int, minute: int, statuses: list[str]) -> list[bytes]:
    body: dict[str, Any] = {"nodeId": NODE, "appKey": "spikyApp", "sessionId": f"s{n}",
                            "callId": f"call-{n}", "caller": "a", "callee": "b"}  # fmt: skip
    at = T0 + minute * W + (n % 50) * 1000
    return [
        orjson.dumps(make(resolve("CallStatusEvent"), body | {"status": s}, at + i, f"e{n}-{i}"))
        for i, s in enumerate(statuses)
    ]


def trace(path: Path, minutes: dict[int, tuple[int, int]], first_call: int) -> None:
    """minute -> (normal calls, FAILED calls)."""
    lines: list[bytes] = []
    n = first_call
    for minute, (normal, failed) in sorted(minutes.items()):
        for i in range(normal + failed):
            statuses = ["TRYING", "FAILED"] if i < failed else ["TRYING", "ESTABLISHED", "FINISH"]
            lines += call(n, minute, statuses)
            n += 1
    path.write_bytes(b"\n".join(lines) + b"\n")


def alerts(data_dir: Path) -> list[dict[str, Any]]:
    sql = (
        "SELECT rule, family, app_key, node_id, state, failures, attempts, ratio, "
        "toUnixTimestamp64Milli(window_start) AS ws, toUnixTimestamp64Milli(fired_at) AS fired, "
        "toUnixTimestamp64Milli(resolved_at) AS resolved FROM alerts FINAL"
    )
    return query(data_dir, sql)


def test_failed_spike_gives_exactly_one_alert(tmp_path: Path) -> None:
    data = tmp_path / "data"
    quiet = {m: (10, 1 if m % 3 == 0 else 0) for m in range(8)}  # normal minutes, rare failures
    trace(tmp_path / "a.ndjson", quiet | {8: (10, 40), 9: (10, 35), 12: (1, 0)}, 0)
    cli("replay", str(tmp_path / "a.ndjson"), "--data-dir", str(data))
    # the clock reached minute 12: minutes 8 and 9 evaluated (one alert), not yet resolved
    assert alerts(data) == [
        {"rule": "call_failed_spike", "family": "call", "app_key": "spikyApp", "node_id": "*",
         "state": "firing", "failures": 40, "attempts": 50, "ratio": 0.8, "ws": T0 + 8 * W,
         "fired": T0 + 9 * W, "resolved": None}
    ]  # fmt: skip
    # a later replay continues from the saved detector state: three clear minutes resolve it
    trace(tmp_path / "b.ndjson", {13: (10, 0), 20: (1, 0)}, 10_000)
    cli("replay", str(tmp_path / "b.ndjson"), "--data-dir", str(data))
    (row,) = alerts(data)
    assert (row["state"], row["resolved"]) == ("resolved", T0 + 13 * W)  # minutes 10, 11, 12
