"""Batch records: the partition of an envelope, and when a partition's batch becomes a record.

Pure (time is an argument, no IO). One open batch per (topic, partition); an
envelope joins the batch of its partition, so per-partition order inside and
across records is publish order as long as closed batches are sent in the order
they are returned. A batch closes when it reaches ``max_envelopes``, when the
next envelope would take its value past ``max_bytes`` (an envelope larger than
that goes alone), or ``linger_s`` after its first envelope (``due``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from aiokafka.partitioner import murmur2

from events.records import EMPTY_BYTES

T = TypeVar("T")
_NOTHING: Final[tuple[()]] = ()


KEY_HASHES: Final = 1 << 16  # entity keys whose hash is kept (an entity's events repeat it)


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record (Java client, aiokafka, Faust):
    ``toPositive(murmur2(key)) % partitions``."""
    return _positive_murmur2(key) % partitions


@functools.lru_cache(maxsize=KEY_HASHES)
def _positive_murmur2(key: bytes) -> int:
    # aiokafka's murmur2 is pure Python (~5 us a key); the last KEY_HASHES keys are cached
    hashed: int = murmur2(key)
    return hashed & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class BatchLimits:
    linger_s: float = 0.005
    max_envelopes: int = 500
    max_bytes: int = 512 << 10  # of the record value; Kafka's default limit is ~1 MiB


@dataclass(slots=True)
class Batch(Generic[T]):
    """Envelopes of one topic partition on their way into one record."""

    topic: str
    partition: int
    key: bytes  # the first envelope's entity key: it hashes to ``partition`` too
    opened: float
    values: list[bytes] = field(default_factory=list)  # envelope JSON, publish order
    tokens: list[T] = field(default_factory=list)  # the caller's handle of each envelope
    size: int = EMPTY_BYTES  # of the record value so far


class Batcher(Generic[T]):
    """The open batches; bounded: one per partition, each within the limits."""

    __slots__ = ("_open", "limits", "pending")

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self._open: dict[tuple[str, int], Batch[T]] = {}  # insertion order = opening order
        self.pending = 0  # envelopes in open batches

    def add(
        self, topic: str, partition: int, key: bytes, value: bytes, token: T, now: float
    ) -> Sequence[Batch[T]]:
        """Add one envelope; the batches this closed (send them in this order, now)."""
        limits, where = self.limits, (topic, partition)
        batch = self._open.get(where)
        closed: list[Batch[T]] = []
        if batch is not None and batch.size + 1 + len(value) > limits.max_bytes:
            closed.append(self._close(where))
            batch = None
        if batch is None:
            batch = self._open[where] = Batch(topic, partition, key, now)
        else:
            batch.size += 1  # the comma
        batch.values.append(value)
        batch.tokens.append(token)
        batch.size += len(value)
        self.pending += 1
        if len(batch.values) >= limits.max_envelopes or batch.size >= limits.max_bytes:
            closed.append(self._close(where))
        return closed or _NOTHING

    def next_due(self) -> float | None:
        """When the oldest open batch is due, or None when nothing is open."""
        for batch in self._open.values():
            return batch.opened + self.limits.linger_s
        return None

    def due(self, now: float) -> list[Batch[T]]:
        """Close and return the batches whose linger is over, oldest first."""
        out: list[Batch[T]] = []
        linger = self.limits.linger_s
        for where, batch in list(self._open.items()):
            if batch.opened + linger > now:
                break  # opened later than this one: not due either
            out.append(self._close(where))
        return out

    def drain(self) -> list[Batch[T]]:
        """Close and return every open batch, oldest first."""
        out = list(self._open.values())
        self._open.clear()
        self.pending = 0
        return out

    def _close(self, where: tuple[str, int]) -> Batch[T]:
        batch = self._open.pop(where)
        self.pending -= len(batch.values)
        return batch


def pack(
    items: Iterable[tuple[str, bytes, bytes]],
    limits: BatchLimits,
    partition: Callable[[str, bytes], int],
) -> list[Batch[None]]:
    """Every (topic, key, value) in batches, at once (no linger): the drainer's batches."""
    batcher: Batcher[None] = Batcher(limits)
    out: list[Batch[None]] = []
    for topic, key, value in items:
        out += batcher.add(topic, partition(topic, key), key, value, None, 0.0)
    return out + batcher.drain()
