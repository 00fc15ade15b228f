"""Loss is bounded when storage stalls (docs/production.md#storage-stalls): `run` writing to a
ClickHouse server that stops answering (tests/chdb_server.py, paused with SIGSTOP) keeps
answering hooks; what is only in memory goes to the spool, so a SIGKILL during the stall
loses at most about one batch interval of hooks, a SIGTERM exits in time, and the next start
stores everything."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.chdb_server import ChdbServer
from tests.e2e.service import Service, cli

pytestmark = pytest.mark.e2e

INTERVAL_MS = 300  # --batch-interval-ms: also the time after which an insert counts as stalled
RATE = 100  # hooks/s


def _hooks(svc: Service, first: int, seconds: float) -> int:
    """POST call hooks at RATE for ``seconds``; every one must be answered 200 quickly."""
    n, started = first, time.monotonic()
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() - started < seconds:
            body = {"nodeId": "n1", "appKey": "stall", "sessionId": "s", "callId": f"c-{n}",
                    "status": "RING"}  # fmt: skip
            answer = client.post(f"{svc.url}/wcs/CallStatusEvent", json=body)
            assert answer.status_code == 200, answer.text
            n += 1
            time.sleep(max(0.0, started + (n - first) / RATE - time.monotonic()))
    return n


def _stored(dsn: str, database: str) -> set[str]:
    sql = f"SELECT DISTINCT key FROM {database}.events WHERE family = 'call'"
    out = cli("query", "--clickhouse", dsn, "--database", database, "--format", "jsonl", sql)
    return {orjson.loads(line)["key"] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_a_stalled_store_loses_at_most_a_batch_interval(
    how: str, tmp_path: Path, service_factory: list[Service]
) -> None:
    database = f"stall_{how}"
    with ChdbServer(tmp_path / "ch") as server:
        args = (
            *("--clickhouse", server.dsn, "--database", database),
            *("--batch-interval-ms", str(INTERVAL_MS), "--shutdown-timeout-ms", "8000"),
        )
        svc = Service(tmp_path / "data", args=args)
        service_factory.append(svc.start())
        sent = _hooks(svc, 0, 2.0)
        server.pause()  # every insert now hangs
        try:
            sent = _hooks(svc, sent, 3.0)  # still answered at once
            metrics = httpx.get(f"{svc.url}/metrics", timeout=5).text
            assert "wcs_store_stalls_total 1" in metrics, metrics[-2000:]
            assert svc.proc is not None
            started = time.monotonic()
            if how == "sigkill":
                svc.proc.send_signal(signal.SIGKILL)
                svc.proc.wait(10)
            else:
                assert svc.stop(timeout_s=30) == 0
                assert time.monotonic() - started < 12  # --shutdown-timeout-ms 8000 + margin
        finally:
            server.resume()
        spooled = list((tmp_path / "data" / "spool").glob("overflow-*.ndjson"))
        assert spooled, "nothing was spooled"
        again = Service(tmp_path / "data", args=args)
        service_factory.append(again.start())  # reads the spool back at start
        assert again.stop() == 0
        stored = _stored(server.dsn, database)
    wanted = {f"c-{n}" for n in range(sent)}
    lost = wanted - stored
    assert len(lost) <= RATE * INTERVAL_MS // 1000, f"{len(lost)} of {sent} hooks lost"
    if how == "sigterm":
        assert not lost  # a bounded stop spools everything it could not write
