"""FAILED-spike alerts on the Kafka path: the same trace through embedded ``replay`` and
through ``replay --kafka`` + ``worker --worker-clock events`` gives the same ``alerts`` rows
(FINAL, without version), and ``<prefix>alerts`` carries the firing and resolved messages."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.catalog import resolve
from events.envelope import make
from events.topics import alerts_topic
from tests.integration import kafka_helpers as kh

pytestmark = pytest.mark.integration

W = 60_000
T0 = 1_699_999_980_000  # a minute boundary
NODE = "node-1@192.0.2.10"


def call(n: int, app: str, at: int, statuses: list[str]) -> list[bytes]:
    body: dict[str, Any] = {"nodeId": NODE, "appKey": app, "sessionId": f"s{n}",
                            "callId": f"call-{n}", "caller": "a", "callee": "b"}  # fmt: skip
    kind = resolve("CallStatusEvent")
    return [
        orjson.dumps(make(kind, body | {"status": s}, at + j, f"e{n}-{j}"))
        for j, s in enumerate(statuses)
    ]


def trace(minutes: dict[int, tuple[int, int]], app: str, first: int) -> list[bytes]:
    """Calls per minute: (normal FINISH calls, FAILED calls), received_at chosen."""
    lines, n = [], first
    for minute, (normal, failed) in sorted(minutes.items()):
        for i in range(normal + failed):
            statuses = ["TRYING", "FAILED"] if i < failed else ["TRYING", "ESTABLISHED", "FINISH"]
            lines += call(n, app, T0 + minute * W + (n % 50) * 1000, statuses)
            n += 1
    return lines


def read(dsn: str, table: str) -> list[dict[str, Any]]:
    sql = f"SELECT * EXCEPT version FROM {table} FINAL ORDER BY ALL"
    out = kh.cli("query", "--clickhouse", dsn, "--format", "jsonl", sql)
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


async def _read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        return [orjson.loads(m.value) for ms in batches.values() for m in ms]
    finally:
        await consumer.stop()


class Hook(BaseHTTPRequestHandler):
    bodies: list[Any] = []

    def do_POST(self) -> None:
        Hook.bodies.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_kafka_alerts_equal_embedded_replay(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    quiet = {m: (10, 1 if m % 3 == 0 else 0) for m in range(8)}
    spike = quiet | {8: (10, 40), 9: (10, 35)} | {m: (10, 0) for m in range(10, 15)}
    lines = trace(spike | {16: (1, 0)}, "spikyApp", 0)
    lines += trace({m: (1, 1 if m == 8 else 0) for m in range(15)}, "smallApp", 5000)
    path = tmp_path / "spike.ndjson"
    path.write_bytes(b"\n".join(sorted(lines, key=lambda b: orjson.loads(b)["received_at"])))

    kh.cli("replay", str(path), "--data-dir", str(tmp_path / "embedded"))
    want = read(kh.dsn_of(tmp_path / "embedded"), "alerts")
    assert [(r["app_key"], r["state"], r["failures"]) for r in want] == [
        ("spikyApp", "resolved", 40)
    ]

    kh.publish_file(kafka_bootstrap, topic_prefix, path, partitions=4)
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path / "kafka", partitions=4)
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env |= {"WCS_KAFKA_ALERTS": "true",
            "WCS_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{hook.server_port}/hook",
            "WCS_ALERT_WEBHOOK_FORMAT": "json"}  # fmt: skip
    worker = kh.start_worker(env, tmp_path / "worker.log")
    try:
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=40)
    finally:
        assert kh.stop_worker(worker) == 0, kh.tail(tmp_path / "worker.log")
        hook.shutdown()
        hook.server_close()
    dsn = kh.dsn_of(tmp_path / "kafka")
    assert read(dsn, "alerts") == want, kh.tail(tmp_path / "worker.log")
    assert read(dsn, "status_counts") == read(kh.dsn_of(tmp_path / "embedded"), "status_counts")

    messages = asyncio.run(_read_topic(kafka_bootstrap, alerts_topic(topic_prefix)))
    assert [(m["state"], m["version"], m["failures"]) for m in messages] == [
        ("firing", 1, 40),
        ("resolved", 2, 40),
    ]
    assert messages[0]["alert_id"] == want[0]["alert_id"]
    posted = [a for body in Hook.bodies for a in body["alerts"]]
    assert posted == messages  # one POST per evaluation that produced alerts
