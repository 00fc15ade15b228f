"""Embedded adapter: in-process bus -> partition runtime -> insert thread, on the event loop.

A loop and nothing else: take what is queued (up to ``DRAIN_BATCH``), ``feed`` it, flush
when due; while input is quiet, advance the event clock by wall time so timeouts and
windows still come due. Processing runs on the event loop in slices; inserts run in the
engine's insert thread, so hooks keep being answered while ClickHouse writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from events.bus import InMemoryBus
from events.envelope import Envelope
from processors.clock import EventClock, wall_ms

log = logging.getLogger(__name__)

DRAIN_BATCH = 512  # envelopes handled per loop turn before yielding to the hook path


class Engine(Protocol):
    """What the runner drives (``wcs_analytics.store.Store``)."""

    def feed(
        self,
        envelopes: Sequence[Envelope],
        bodies: Sequence[str | None] | None = None,
        wall: int | None = None,
    ) -> None: ...
    def advance(self, now_ms: int) -> None: ...
    def due(self) -> bool: ...
    def flush(self, windows: bool = True, timeout: float | None = None) -> bool: ...
    def finish(self, timeout: float | None = None) -> bool: ...
    @property
    def clock_ms(self) -> int | None: ...


class EmbeddedRunner:
    """Consumes the bus until it is closed, then finishes (flush-then-exit)."""

    def __init__(
        self,
        bus: InMemoryBus,
        engine: Engine,
        clock: EventClock,
        tick_s: float = 0.25,
        wall: Callable[[], int] = wall_ms,
    ) -> None:
        self.bus, self.engine, self.clock = bus, engine, clock
        self.tick_s = tick_s
        self._wall = wall
        self.processed = 0
        self.flush_waits = 0  # flushes that waited for the previous insert

    async def run(self) -> None:
        while True:
            try:
                first = await asyncio.wait_for(self.bus.get(), self.tick_s)
            except TimeoutError:
                self._tick()
                await self._flush_if_due()
                continue
            more = self._drain(first)
            await self._flush_if_due()
            if not more:
                break
        await asyncio.to_thread(self.engine.finish)

    def _drain(self, first: Envelope | None) -> bool:
        """Process ``first`` and what is already queued; False once the end marker is seen."""
        batch: list[Envelope] = []
        envelope, more = first, True
        while True:
            if envelope is None:
                more = False
                break
            batch.append(envelope)
            if len(batch) >= DRAIN_BATCH:
                break
            try:
                envelope = self.bus.get_nowait()
            except asyncio.QueueEmpty:
                break
        if batch:
            self.engine.feed(batch, wall=self._wall())
            self.processed += len(batch)
            self.clock.observe(self.engine.clock_ms)
        return more

    def _tick(self) -> None:
        now = self.clock.now()
        if now is not None:
            self.engine.advance(now)

    async def _flush_if_due(self) -> None:
        if not self.engine.due():
            return
        if not self.engine.flush(timeout=0):
            self.flush_waits += 1  # the previous insert is still running: wait off the loop
            await asyncio.to_thread(self.engine.flush)
