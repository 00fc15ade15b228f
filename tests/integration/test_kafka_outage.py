"""Kafka stopped while hooks keep coming: every hook answered 200 within budget; after Kafka
returns the spool drains, every envelope arrives in per-key order, and a worker then fills the
ClickHouse tables completely (every hook in ``events``, every call with its final disposition).

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
import orjson
import pytest

from events.topics import input_topics
from tests.integration import kafka_helpers as kh
from tests.integration.kafka_ingest_helpers import ingest_process, kcat_envelopes, metric
from tests.kafka_broker import SCRIPT, free_port_pair

pytestmark = pytest.mark.integration

BUDGET_MS = 1000
MARGIN_S = 0.5
KEYS = 10
HOOKS = 100
PARTITIONS = 3  # what ``ingest_process`` creates the topics with
# call-k's hooks are seq k, k+10, ..., k+90: its 6th hook (seq 50..59, Kafka down) and its
# last (seq 90..99, Kafka back) decide its disposition (processors.calls.disposition)
OUTCOMES = {0: ("ESTABLISHED", "FINISH", "ANSWERED"), 1: (None, "BUSY", "BUSY")}
OUTCOMES |= {2: (None, "FAILED", "FAILED"), 3: (None, "FINISH", "NO_ANSWER")}


def _status(seq: int) -> str:
    """The call status a hook carries: RING, then the call's outcome (see OUTCOMES)."""
    middle, last, _ = OUTCOMES[seq % KEYS % len(OUTCOMES)]
    step = seq // KEYS
    if step == HOOKS // KEYS - 1:
        return last
    return middle if middle is not None and step == 5 else "RING"


def _broker(port: int, action: str) -> None:
    env = {**os.environ, "KAFKA_PORT": str(port)}
    done = subprocess.run(
        [str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kafka.sh {action}: {done.stderr[-1000:]}"


@pytest.fixture
def own_broker(kafka_bootstrap: str) -> Iterator[tuple[str, int]]:
    """A broker of this test only (kafka_bootstrap: same skip/fail rules when Kafka is missing)."""
    port = free_port_pair()
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
            call = f"call-{seq % KEYS}"
            body = {
                "nodeId": "n",
                "sessionId": "s",
                "callId": call,
                "seq": seq,
                "status": _status(seq),
            }
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


def _worker_tables(bootstrap: str, prefix: str, data_dir: Path) -> tuple[int, dict[str, str]]:
    """Run a worker over the topics until it committed everything, stop it (end-of-input
    flush), then read ClickHouse: (distinct events, {call_id: disposition})."""
    data_dir.mkdir()
    env = kh.worker_env(bootstrap, prefix, data_dir, partitions=PARTITIONS)
    log = data_dir / "worker.log"
    worker = kh.start_worker(env, log)
    try:
        kh.wait_caught_up(bootstrap, prefix, timeout=45)
    finally:
        assert kh.stop_worker(worker, timeout=45) == 0, kh.tail(log)
    dsn = kh.dsn_of(data_dir)
    count = "SELECT count() AS n FROM wcs.events FINAL"
    events = orjson.loads(kh.cli("query", "--clickhouse", dsn, "--format", "jsonl", count))
    sql = "SELECT call_id, disposition FROM wcs.calls FINAL"
    out = kh.cli("query", "--clickhouse", dsn, "--format", "jsonl", sql)
    rows = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    return int(events["n"]), {row["call_id"]: row["disposition"] for row in rows}


def test_hooks_answered_while_kafka_is_down_then_spool_drains(
    kcat: str, own_broker: tuple[str, int], tmp_path: Path
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
        asyncio.run(_wave(url, 80, HOOKS - 80))
        _wait_drained(url, 60)
        assert metric(url, "wcs_kafka_spooled_total") >= 60
    assert process.returncode == 0
    seen: dict[str, list[int]] = {}
    for envelope in kcat_envelopes(bootstrap, input_topics(prefix)):
        order = seen.setdefault(envelope["key"], [])
        if envelope["body"]["seq"] not in order:  # at-least-once: keep first arrivals
            order.append(envelope["body"]["seq"])
    assert sorted(s for order in seen.values() for s in order) == list(range(HOOKS))
    for key, order in seen.items():
        assert order == sorted(order), key
    events, calls = _worker_tables(bootstrap, prefix, tmp_path / "worker")
    assert events == HOOKS
    want = {f"call-{k}": OUTCOMES[k % len(OUTCOMES)][2] for k in range(KEYS)}
    assert calls == want
