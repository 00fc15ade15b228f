"""HTTP -> ingest -> real Kafka: every family lands in its topic, read back with kcat.

Records are batch records (``events.records``); each envelope sits in the partition
Kafka's default partitioner gives its entity key, and the record key hashes there too.

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
from ingest.kafka_batch import partition_of
from tests.integration.kafka_ingest_helpers import (
    Record,
    ingest_process,
    kcat_envelopes,
    kcat_records,
    metric,
)
from tests.metrics_docs import undocumented

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
        missing = undocumented(httpx.get(f"{url}/metrics", timeout=5).text)
        assert missing == [], ", ".join(missing)  # docs/metrics.md names them all
    assert process.returncode == 0  # SIGTERM: clean stop
    found = {topic: kcat_records(kafka_bootstrap, topic) for topic in input_topics(topic_prefix)}
    for records in found.values():
        for record in records:
            _check_record(record, partitions=3)
    for name, body in HOOKS:
        method = resolve(name)
        envelopes = [
            envelope
            for record in found[family_topic(topic_prefix, method.family)]
            for envelope in record.envelopes
            if envelope["method"] == method.name
        ]
        assert len(envelopes) == 1, (name, envelopes)
        value = envelopes[0]
        assert value["key"] == entity_key(method, body)
        assert value["body"] == _redacted(body)
        assert value["family"] == method.family
        assert isinstance(value["received_at"], int) and value["received_at"] > 1_600_000_000_000
        assert value["node_id"] == "node-1" and value["app_key"] == "defaultApp"
    assert sum(len(r.envelopes) for records in found.values() for r in records) == len(HOOKS)


def _check_record(record: Record, partitions: int) -> None:
    """Headers name the format and count; every envelope (and the key) belongs to the partition."""
    assert record.headers == {"v": b"2", "count": str(len(record.envelopes)).encode()}
    assert partition_of(record.key, partitions) == record.partition
    for envelope in record.envelopes:
        assert partition_of(envelope["key"].encode(), partitions) == record.partition


def test_ack_buffer_answers_and_delivers(
    kcat: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    flags = ("--ack", "buffer", "--kafka-batch-linger-ms", "20")
    data = tmp_path / "data"
    with ingest_process(kafka_bootstrap, topic_prefix, data, *flags) as (url, process):
        client = httpx.Client(base_url=url, timeout=10)
        for index in range(50):
            body = {**NODE, "callId": f"call-{index % 5}", "status": str(index)}
            assert client.post("/wcs/CallStatusEvent", json=body).status_code == 200
        client.close()
        assert metric(url, "wcs_kafka_produced_total") == 50
    assert process.returncode == 0  # the stop flushed the producer
    envelopes = kcat_envelopes(kafka_bootstrap, [family_topic(topic_prefix, "call")])
    assert len(envelopes) == 50
    for call in range(5):
        statuses = [int(e["body"]["status"]) for e in envelopes if e["key"] == f"call-{call}"]
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
