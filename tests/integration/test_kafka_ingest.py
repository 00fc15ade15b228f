"""HTTP -> ingest -> real Kafka: every family lands in its topic, read back with kcat.

The ingest service runs as its own process (``python -m wcs_analytics.kafka_ingest``,
the code behind ``wcs-analytics ingest``) with a per-test topic prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from events.catalog import entity_key, resolve
from events.topics import family_topic, input_topics
from tests.integration.kafka_ingest_helpers import ingest_process, kcat_records, metric

pytestmark = pytest.mark.integration

NODE = {"nodeId": "node-1", "appKey": "defaultApp", "sessionId": "sess-1"}
HOOKS: list[tuple[str, dict[str, Any]]] = [
    ("connect", {**NODE, "authToken": "secret-1", "sipPassword": "secret-2"}),
    ("ConnectionStatusEvent", {**NODE, "status": "ESTABLISHED"}),
    ("call", {**NODE, "callId": "call-1", "callee": "bob", "token": "secret-3"}),
    ("CallStatusEvent", {**NODE, "callId": "call-1", "status": "RING"}),
    ("sendMessage", {**NODE, "id": "msg-1", "to": "bob"}),
    ("sendIMDN", {**NODE, "messageId": "msg-1", "status": "DELIVERED"}),
    ("subscribe", {**NODE, "event": "presence"}),
    ("publishStream", {**NODE, "mediaSessionId": "ms-1", "name": "s1"}),
    ("StreamStatusEvent", {**NODE, "mediaSessionId": "ms-1", "status": "PUBLISHING"}),
    ("sendData", {**NODE, "operationId": "op-1", "payload": {"a": 1}}),
    ("ErrorEvent", {**NODE, "info": "boom"}),
    ("FutureWcsEvent", {**NODE, "custom": {"token": "secret-4", "x": 1}}),
]
SECRETS = ("authToken", "sipPassword", "token")


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items() if k not in SECRETS}
    return value


def _post_all(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for name, body in HOOKS:
            raw = orjson.dumps(body)
            answer = client.post(f"/wcs/{name}", content=raw)
            assert answer.status_code == 200, (name, answer.text)
            assert answer.content == raw


def test_every_family_lands_in_its_topic(
    kcat: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    with ingest_process(kafka_bootstrap, topic_prefix, tmp_path / "data") as (url, process):
        _post_all(url)
        assert metric(url, "wcs_kafka_acked_total") == len(HOOKS)
        assert metric(url, "wcs_kafka_spooled_total") == 0
    assert process.returncode == 0  # SIGTERM: clean stop
    found = {topic: kcat_records(kafka_bootstrap, topic) for topic in input_topics(topic_prefix)}
    for name, body in HOOKS:
        method = resolve(name)
        records = [
            (key, headers, value)
            for key, headers, value in found[family_topic(topic_prefix, method.family)]
            if value["method"] == method.name
        ]
        assert len(records) == 1, (name, records)
        key, headers, value = records[0]
        assert key == entity_key(method, body).encode()
        assert headers == {"method": method.name.encode()}
        assert value["body"] == _redacted(body)
        assert value["family"] == method.family and value["key"] == key.decode()
        assert isinstance(value["received_at"], int) and value["received_at"] > 1_600_000_000_000
        assert value["node_id"] == "node-1" and value["app_key"] == "defaultApp"
    assert sum(len(records) for records in found.values()) == len(HOOKS)


def test_ack_buffer_answers_and_delivers(
    kcat: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    flags = ("--ack", "buffer", "--kafka-linger-ms", "20")
    data = tmp_path / "data"
    with ingest_process(kafka_bootstrap, topic_prefix, data, *flags) as (url, process):
        client = httpx.Client(base_url=url, timeout=10)
        for index in range(50):
            body = {**NODE, "callId": f"call-{index % 5}", "status": str(index)}
            assert client.post("/wcs/CallStatusEvent", json=body).status_code == 200
        client.close()
        assert metric(url, "wcs_kafka_produced_total") == 50
    assert process.returncode == 0  # the stop flushed the producer
    records = kcat_records(kafka_bootstrap, family_topic(topic_prefix, "call"))
    assert len(records) == 50
    for call in range(5):
        statuses = [int(v["body"]["status"]) for k, _, v in records if k == f"call-{call}".encode()]
        assert statuses == list(range(call, 50, 5))  # per-key order


def test_ingest_metrics_and_docs_need_read_credentials(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    flags = ("--read-token", "ingest-read-3141")
    with ingest_process(kafka_bootstrap, topic_prefix, tmp_path / "data", *flags) as (url, _):
        bearer = {"Authorization": "Bearer ingest-read-3141"}
        for path in ("/metrics", "/openapi.json", "/docs"):
            assert httpx.get(f"{url}{path}").status_code == 401, path
            assert httpx.get(f"{url}{path}", headers=bearer).status_code == 200, path
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.post(f"{url}/wcs/connect", content=b"{}").status_code == 200
