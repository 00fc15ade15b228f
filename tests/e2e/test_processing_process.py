"""`run --processing process`: the runtime in a process of its own (wcs_analytics/processing.py).
What it stores is what `--processing inline` stores (test_ground_truth runs both); here: a
processing process that dies stops the service with exit 1 and nothing it held is lost, and
the processing process ends with the service."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.service import Service, query

pytestmark = pytest.mark.e2e

SESSIONS = 40
HOOKS = (("connect", {}), ("ConnectionStatusEvent", {"status": "ESTABLISHED"}))


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reparented child is reaped by whoever adopted it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _post_sessions(svc: Service) -> None:
    with httpx.Client(timeout=5.0) as client:
        for n in range(SESSIONS):
            body = {"nodeId": "node-1", "appKey": "app", "sessionId": f"s-{n}"}
            for method, extra in HOOKS:
                answer = client.post(f"{svc.url}/wcs/{method}", json=body | extra)
                assert answer.status_code == 200, answer.text


def _started_with_sessions(data: Path, factory: list[Service]) -> tuple[Service, int]:
    """A service with its processing process, the sessions posted (no flush for a minute:
    every envelope is only in memory) and the processing process's pid."""
    svc = Service(data, env={"WCS_PROCESSING": "process"}, args=("--batch-interval-ms", "60000"))
    factory.append(svc.start())
    assert svc.proc is not None
    _post_sessions(svc)
    [child] = _children(svc.proc.pid)
    return svc, child


def test_a_processing_process_that_dies_stops_the_service_and_loses_nothing(
    tmp_path: Path, service_factory: list[Service]
) -> None:
    data = tmp_path / "data"
    svc, child = _started_with_sessions(data, service_factory)
    os.kill(child, signal.SIGKILL)
    assert svc.proc.wait(timeout=30) == 1  # stopped by itself
    log = svc.log()
    assert "the processing process exited (exit code -9)" in log
    assert "what was not written is in the spool for the next start" in log
    again = Service(data, env={"WCS_PROCESSING": "inline"})
    service_factory.append(again.start())
    assert again.stop() == 0
    assert query(data, "SELECT count() AS n FROM events FINAL") == [{"n": 2 * SESSIONS}]
    established = "SELECT count() AS n FROM connections FINAL WHERE established_at IS NOT NULL"
    assert query(data, established) == [{"n": SESSIONS}]


def test_the_processing_process_ends_with_the_service(
    tmp_path: Path, service_factory: list[Service]
) -> None:
    """SIGTERM reaches the whole group (a terminal's Ctrl-C, systemd): the processing process
    ignores it, does the service's last flush, and ends after it."""
    data = tmp_path / "data"
    svc, child = _started_with_sessions(data, service_factory)
    os.kill(child, signal.SIGTERM)  # as the group gets it, before the service
    assert svc.stop() == 0
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)
    assert query(data, "SELECT count() AS n FROM events FINAL") == [{"n": 2 * SESSIONS}]
    assert "processing process" not in svc.log()  # no failure reported
