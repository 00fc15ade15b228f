"""Faust options of `wcs-analytics worker`: what one fetch may bring, and that it stays bounded."""

from __future__ import annotations

import inspect

import aiokafka
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from wcs_analytics.settings import MAX_RECORD_BYTES, load
from wcs_analytics.worker import FETCH_BYTES, faust_options


def test_a_fetch_brings_many_batch_records_per_partition() -> None:
    options = faust_options(load({"WCS_KAFKA": "127.0.0.1:9092"}))
    assert options["consumer_max_fetch_size"] == FETCH_BYTES
    # Faust's default (1 MiB) holds a few dozen batch records a partition and drains a backlog
    # in stalls; the setting holds several records of the largest size ingest writes
    assert FETCH_BYTES >= 8 * MAX_RECORD_BYTES


def test_fetched_bytes_stay_bounded_by_the_response_limit() -> None:
    # Faust does not set fetch_max_bytes, so aiokafka's default bounds one fetch response and a
    # bigger per-partition size does not multiply by the number of partitions
    for create in ("_create_worker_consumer", "_create_client_consumer"):
        assert "fetch_max_bytes" not in inspect.getsource(getattr(AIOKafkaConsumerThread, create))
    default = inspect.signature(aiokafka.AIOKafkaConsumer).parameters["fetch_max_bytes"].default
    assert default <= 64 << 20
    assert default >= FETCH_BYTES
