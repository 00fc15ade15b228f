"""Pure parts of the Kafka bus: the record of an envelope, the hook's ack wait, the mode.

No IO here (unit-tested without a broker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from events.envelope import Envelope, encode
from events.topics import family_topic

METHOD_HEADER: Final = "method"
SPOOL_RESERVE_S: Final = 0.25  # of the hook budget, kept for writing to the spool after a timeout


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One Kafka record: topic ``<prefix><family>``, key = entity key, value = envelope JSON."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def to_record(prefix: str, envelope: Envelope) -> KafkaRecord:
    return _record(prefix, envelope, encode(envelope))


def from_spool(prefix: str, payload: bytes) -> KafkaRecord:
    """The record of a spooled payload (the envelope JSON exactly as it was encoded)."""
    envelope = orjson.loads(payload)
    return _record(prefix, envelope, payload)


def _record(prefix: str, envelope: Envelope, value: bytes) -> KafkaRecord:
    return KafkaRecord(
        family_topic(prefix, envelope["family"]),
        envelope["key"].encode(),
        value,
        [(METHOD_HEADER, envelope["method"].encode())],
    )


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
