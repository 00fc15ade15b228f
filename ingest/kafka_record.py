"""Pure parts of the Kafka bus: an envelope on its way, batch records, ack wait, the mode.

No IO here (unit-tested without a broker).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from events.envelope import Envelope, encode, validate
from events.records import batch_headers, join_encoded
from events.topics import family_topic
from ingest.kafka_batch import Batch, BatchLimits
from processors.families import entity_key

SPOOL_RESERVE_S: Final = 0.25  # of the hook budget, kept for writing to the spool after a timeout


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One envelope on its way: topic ``<prefix><family>``, entity key, envelope JSON."""

    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One Kafka record: a batch of envelopes of one topic partition (``events.records``)."""

    topic: str
    partition: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def outgoing(prefix: str, envelope: Envelope) -> Outgoing:
    return Outgoing(
        family_topic(prefix, envelope["family"]), routing_key(envelope), encode(envelope)
    )


def routing_key(envelope: Envelope) -> bytes:
    """The key a record is partitioned by: the entity's key as the processors key its state
    (from the body), so every event of an entity meets its state in one partition even when
    the envelope's ``key`` says otherwise (a recorded file that was edited or written by
    another tool: ``replay --kafka``); the envelope's ``key`` when the event has no entity.
    For envelopes the ingest builds the two are the same."""
    key, _ = entity_key(envelope)
    return (envelope["key"] if key is None else key).encode("utf-8", "surrogatepass")


def from_spool(prefix: str, payload: bytes) -> Outgoing:
    """The envelope of a spooled payload (the envelope JSON exactly as it was encoded).

    Raises ValueError (``EnvelopeError``, JSON errors) when it is not an envelope.
    """
    envelope = validate(orjson.loads(payload))
    return Outgoing(family_topic(prefix, envelope["family"]), routing_key(envelope), payload)


def batch_record(batch: Batch[Any]) -> KafkaRecord:
    return record_of(batch.topic, batch.partition, batch.key, batch.values)


def record_of(topic: str, partition: int, key: bytes, values: Sequence[bytes]) -> KafkaRecord:
    """The record of envelopes (encoded) that all belong to ``topic`` ``partition``."""
    return KafkaRecord(topic, partition, key, join_encoded(values), batch_headers(len(values)))


def ack_wait_s(hook_budget_ms: int) -> float:
    """How long a hook waits for Kafka before its envelope goes to the spool instead.

    The budget minus a reserve for the spool's fsync batch, but at least half the budget.
    """
    budget = hook_budget_ms / 1000
    return max(budget - SPOOL_RESERVE_S, budget / 2)


class Router:
    """Direct sends or spooling; once anything is spooled, everything is, until drained.

    Per-key order: a record may only go to Kafka directly when nothing older is
    still waiting in the spool.
    """

    __slots__ = ("spooling", "switches")

    def __init__(self, spooling: bool = False) -> None:
        self.spooling = spooling
        self.switches = 0

    def spooled(self) -> bool:
        """An envelope went to the spool; True when that switched the mode."""
        if self.spooling:
            return False
        self.spooling = True
        self.switches += 1
        return True

    def drained(self, caught_up: bool, producer_ready: bool) -> bool:
        """The drainer finished a pass; True when that switched back to direct sends."""
        if not self.spooling or not caught_up or not producer_ready:
            return False
        self.spooling = False
        self.switches += 1
        return True

    @property
    def mode(self) -> str:
        return "spooling" if self.spooling else "direct"


@dataclass(frozen=True, slots=True)
class KafkaBusConfig:
    topic_prefix: str = "wcs."
    ack_buffer: bool = False  # True: answer once queued in the bus (see max_unsent)
    hook_budget_ms: int = 2000
    reject_when_full: bool = False  # spool full: answer 503 (True) or drop and answer 200
    close_timeout_s: float = 10.0
    batch: BatchLimits = field(default_factory=BatchLimits)
    max_unsent: int = 20_000  # ack=buffer: envelopes answered before they reach the producer
