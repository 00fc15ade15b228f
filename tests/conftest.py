"""Fixtures shared by every test directory."""

from tests.kafka_broker import kafka_bootstrap, topic_prefix

__all__ = ["kafka_bootstrap", "topic_prefix"]
