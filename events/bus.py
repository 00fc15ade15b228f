"""The bus between ingest and processors: a small Protocol and the in-memory implementation.

Kafka implements the same Protocol in production (``ingest.kafka_bus``).
``publish`` never blocks and never raises on a full bus: the hook path must not
be slowed by analytics being behind. A full in-memory bus hands the envelope to
an overflow sink (a local NDJSON spool) so nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from events.envelope import Envelope


class BusRejected(Exception):
    """The bus cannot take the envelope and its policy is to refuse (Kafka spool full, ``reject``).

    The only exception a bus may raise (from ``publish`` or its awaitable); the
    hook answers 503 so WCS retries or logs it.
    """


class Bus(Protocol):
    def publish(self, envelope: Envelope) -> Awaitable[None] | None:
        """Hand one envelope downstream. Must not block; called on the event loop.

        None: the envelope is accepted (in-memory bus; the hot path awaits nothing).
        An awaitable: the caller awaits it before answering WCS; it completes once
        the envelope is durable enough (Kafka ack, producer queue or disk spool),
        within the bus's own time budget, and raises nothing but ``BusRejected``.
        """

    def depth(self) -> int:
        """Envelopes accepted but not yet consumed (for /metrics)."""


class InMemoryBus:
    """Bounded asyncio queue; overflow goes to ``on_overflow`` instead of blocking.

    ``spilling``: once one envelope went to ``on_overflow`` (the queue was full, or the
    consumer asked because its store stalled), every later one does too, in order, until
    the consumer has read the spool back and clears the flag.
    """

    def __init__(self, maxsize: int, on_overflow: Callable[[Envelope], None]) -> None:
        self._queue: asyncio.Queue[Envelope | None] = asyncio.Queue(maxsize)
        self._on_overflow = on_overflow
        self.overflowed = 0
        self.spilling = False
        self.closed = False

    def publish(self, envelope: Envelope) -> None:
        if not self.spilling:
            try:
                self._queue.put_nowait(envelope)
                return
            except asyncio.QueueFull:
                self.spilling = True
        self.overflowed += 1
        self._on_overflow(envelope)

    def take_queued(self) -> tuple[list[Envelope], bool]:
        """Everything queued now, and whether the end marker was among it (it stays queued).
        For the consumer spilling its queue to the spool."""
        taken: list[Envelope] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return taken, False
            if item is None:
                self._queue.put_nowait(None)
                return taken, True
            taken.append(item)

    def depth(self) -> int:
        return self._queue.qsize()

    async def get(self) -> Envelope | None:
        """Next envelope; None once ``close`` was called and everything before it was read."""
        return await self._queue.get()

    def get_nowait(self) -> Envelope | None:
        """Raises asyncio.QueueEmpty when nothing is waiting."""
        return self._queue.get_nowait()

    async def close(self) -> None:
        """Mark the end of input (``closed``; the end marker joins the queue when there is
        room, else the consumer sees ``closed`` once the queue is empty). Never blocks."""
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
