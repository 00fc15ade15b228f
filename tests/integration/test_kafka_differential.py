"""Differential test: the same simulated trace through embedded ``replay`` and through
real Kafka + the Faust worker gives identical rows in every table (FINAL, no version)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from events.topics import dead_letter_topic, family_topic
from tests.integration import kafka_helpers as kh
from tests.integration.kafka_helpers import embedded_result
from tests.integration.kafka_ingest_helpers import kcat_json

pytestmark = pytest.mark.integration

__all__ = ["embedded_result"]


def test_worker_equals_embedded_replay(
    kcat: str, kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    kh.publish_file(kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4)
    secret = b'{"v": 1, "method": "call", "body": {"sipPassword": "dl-Secret-5521"}}'
    bad = {b"not json {": "record value is not JSON", secret: "field 'id' must be str"}
    asyncio.run(_publish(kafka_bootstrap, family_topic(topic_prefix, "call"), list(bad)))
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4)
    worker = kh.start_worker(env, tmp_path / "worker.log")
    try:
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=90)
    finally:
        assert kh.stop_worker(worker) == 0, kh.tail(tmp_path / "worker.log")
    got = kh.read_tables(kh.dsn_of(tmp_path))
    kh.assert_same(embedded_result.tables, got)
    assert "partitions flushed: True" in (tmp_path / "worker.log").read_text()
    # bad records on an input topic: dead-lettered with the reason and where they came from,
    # nothing else changed
    dead = kcat_json(kafka_bootstrap, dead_letter_topic(topic_prefix))
    reasons = sorted(str(value["reason"]) for _, _, value in dead)
    assert len(reasons) == 2 and all(
        r.startswith(want) for r, want in zip(reasons, sorted(bad.values()), strict=True)
    ), reasons
    for _, _, value in dead:
        assert value["table"] == "envelope"
        assert value["topic"] == family_topic(topic_prefix, "call")
        assert isinstance(value["offset"], int) and isinstance(value["partition"], int)
    by_reason = {str(value["reason"])[:10]: value for _, _, value in dead}
    assert by_reason["record val"]["row"] is None  # not JSON: kept by position only
    assert by_reason["field 'id'"]["row"]["body"] == {}  # the secret removed, the rest kept
    assert "dl-Secret-5521" not in repr(dead)  # redacted like the ingest does


async def _publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"bad")
    finally:
        await producer.stop()


def test_worker_fed_live_in_paced_slices_equals_embedded_replay(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """Live input instead of a backlog: the worker runs first and the trace arrives in eight
    slices, in time order, with pauses in between (the worker idles, ticks and flushes
    between them): the same tables, windows and alerts included, as the embedded replay."""
    lines = [line for line in embedded_result.trace.read_bytes().splitlines() if line.strip()]
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4)
    kh.ensure_worker_topics(kafka_bootstrap, topic_prefix, partitions=4)
    log = tmp_path / "worker.log"
    worker = kh.start_worker(env, log)
    try:
        step = len(lines) // 8 + 1
        for n, start in enumerate(range(0, len(lines), step)):
            part = tmp_path / f"part{n}.ndjson"
            part.write_bytes(b"\n".join(lines[start : start + step]) + b"\n")
            kh.publish_file(kafka_bootstrap, topic_prefix, part, partitions=4, per_record=50)
            time.sleep(1.0)
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=90)
    finally:
        assert kh.stop_worker(worker) == 0, kh.tail(log)
    kh.assert_same(embedded_result.tables, kh.read_tables(kh.dsn_of(tmp_path)))
