"""Kafka stopped while hooks keep coming: every hook answered 200 within budget; after Kafka
returns the spool drains and every envelope arrives, in per-key order.

Uses its own broker (``deploy/kafka/kafka.sh`` on a free port) so the session broker stays up.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from events.topics import input_topics
from tests.integration.kafka_ingest_helpers import ingest_process, kcat_records, metric
from tests.kafka_broker import SCRIPT, _free_port_pair

pytestmark = pytest.mark.integration

BUDGET_MS = 1000
MARGIN_S = 0.5
KEYS = 10


def _broker(port: int, action: str) -> None:
    env = {**os.environ, "KAFKA_PORT": str(port)}
    done = subprocess.run(
        [str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kafka.sh {action}: {done.stderr[-1000:]}"


@pytest.fixture
def own_broker(kafka_bootstrap: str) -> Iterator[tuple[str, int]]:
    """A broker of this test only (kafka_bootstrap: same skip/fail rules when Kafka is missing)."""
    port = _free_port_pair()
    _broker(port, "start")
    try:
        yield f"127.0.0.1:{port}", port
    finally:
        _broker(port, "reset")


async def _wave(url: str, first: int, count: int) -> list[float]:
    """POST hooks ``first..first+count-1`` (KEYS at a time, distinct keys); their latencies."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(seq: int) -> None:
            body = {"nodeId": "n", "sessionId": "s", "callId": f"call-{seq % KEYS}", "seq": seq}
            started = time.monotonic()
            answer = await client.post("/wcs/CallStatusEvent", json=body)
            latencies.append(time.monotonic() - started)
            assert answer.status_code == 200, answer.text

        for start in range(first, first + count, KEYS):
            await asyncio.gather(*(one(s) for s in range(start, min(start + KEYS, first + count))))
    return latencies


def _wait_drained(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if metric(url, 'wcs_kafka_mode{mode="direct"}') == 1 and metric(
            url, "wcs_kafka_drained_total"
        ) >= metric(url, "wcs_kafka_spooled_total"):
            return
        time.sleep(0.2)
    pytest.fail(f"spool not drained within {timeout_s} s")


def test_hooks_answered_while_kafka_is_down_then_spool_drains(
    own_broker: tuple[str, int], tmp_path: Path
) -> None:
    bootstrap, port = own_broker
    prefix = "outage."
    flags = ("--hook-budget-ms", str(BUDGET_MS))
    with ingest_process(bootstrap, prefix, tmp_path / "data", *flags) as (url, process):
        asyncio.run(_wave(url, 0, 20))
        _broker(port, "stop")
        down = asyncio.run(_wave(url, 20, 60))
        assert max(down) <= BUDGET_MS / 1000 + MARGIN_S, sorted(down)[-5:]
        assert metric(url, 'wcs_kafka_mode{mode="spooling"}') == 1
        assert metric(url, "wcs_kafka_spool_bytes") > 0
        _broker(port, "start")
        asyncio.run(_wave(url, 80, 20))
        _wait_drained(url, 60)
        assert metric(url, "wcs_kafka_spooled_total") >= 60
    assert process.returncode == 0
    records = [r for topic in input_topics(prefix) for r in kcat_records(bootstrap, topic)]
    seen: dict[bytes, list[int]] = {}
    for key, _, value in records:
        order = seen.setdefault(key, [])
        if value["body"]["seq"] not in order:  # at-least-once: keep first arrivals
            order.append(value["body"]["seq"])
    assert sorted(s for order in seen.values() for s in order) == list(range(100))
    for key, order in seen.items():
        assert order == sorted(order), key
