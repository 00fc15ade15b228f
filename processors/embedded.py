"""Embedded adapter: in-process bus -> Pipeline -> row sink, on the service's event loop.

No business logic here: take envelopes, call the pipeline, forward rows. The
sink is flushed when due (batch size or age) in a worker thread so hooks keep
being answered while ClickHouse writes; envelopes wait in the bounded bus
meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from events.bus import InMemoryBus
from events.envelope import Envelope
from events.tables import Row
from processors.pipeline import Pipeline

log = logging.getLogger(__name__)

DRAIN_BATCH = 512  # envelopes handled per loop turn before yielding to the hook path


class RowSink(Protocol):
    @property
    def pending(self) -> int: ...

    def add(self, rows: Iterable[Row]) -> None: ...
    def add_envelope(self, envelope: Envelope) -> None: ...
    def due(self) -> bool: ...
    def flush(self) -> int: ...


class EventClock:
    """Event time: the highest received_at seen, advanced by wall time while input is quiet.

    Replays pass ``follow_wall=False`` so the clock is a function of the input only.
    """

    def __init__(self, follow_wall: bool, wall_ms: Callable[[], int] | None = None) -> None:
        self._follow_wall = follow_wall
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._event_ms: int | None = None
        self._wall_at_event = 0

    def observe(self, event_ms: int | None) -> None:
        if event_ms is not None and (self._event_ms is None or event_ms > self._event_ms):
            self._event_ms = event_ms
            self._wall_at_event = self._wall_ms()

    def now(self) -> int | None:
        if self._event_ms is None:
            return None
        if not self._follow_wall:
            return self._event_ms
        return self._event_ms + max(0, self._wall_ms() - self._wall_at_event)


def feed(pipeline: Pipeline, sink: RowSink, clock: EventClock, envelope: Envelope) -> None:
    """One envelope through the pipeline into the sink (raw event row first)."""
    sink.add_envelope(envelope)
    sink.add(pipeline.process(envelope))
    clock.observe(pipeline.clock_ms)
    now = clock.now()
    if now is not None:
        sink.add(pipeline.advance(now))


def finish(pipeline: Pipeline, sink: RowSink, clock: EventClock) -> int:
    """End of input: fire what is due, emit held windows, write everything. Returns rows written."""
    now = clock.now()
    if now is not None:
        sink.add(pipeline.advance(now))
    sink.add(pipeline.flush())
    return sink.flush()


class EmbeddedRunner:
    """Consumes the bus until it is closed, then finishes (flush-then-exit)."""

    def __init__(
        self,
        bus: InMemoryBus,
        pipeline: Pipeline,
        sink: RowSink,
        clock: EventClock,
        tick_s: float = 0.25,
        after_flush: Callable[[], None] | None = None,
    ) -> None:
        self.bus, self.pipeline, self.sink, self.clock = bus, pipeline, sink, clock
        self.tick_s = tick_s
        self.after_flush = after_flush
        self.processed = 0
        self.flush_errors = 0

    async def run(self) -> None:
        while True:
            try:
                first = await asyncio.wait_for(self.bus.get(), self.tick_s)
            except TimeoutError:
                self._tick()
                await self._flush_if_due()
                continue
            if first is None or not self._drain(first):
                break
            await self._flush_if_due()
        await asyncio.to_thread(finish, self.pipeline, self.sink, self.clock)

    def _drain(self, first: Envelope) -> bool:
        """Process ``first`` and what is already queued; False once the end marker is seen."""
        envelope: Envelope | None = first
        for handled in range(1, DRAIN_BATCH + 1):
            if envelope is None:
                return False
            feed(self.pipeline, self.sink, self.clock, envelope)
            self.processed += 1
            if handled == DRAIN_BATCH or self.sink.due():
                return True  # take nothing more off the bus: it would be dropped
            try:
                envelope = self.bus.get_nowait()
            except asyncio.QueueEmpty:
                return True
        return True

    def _tick(self) -> None:
        now = self.clock.now()
        if now is not None:
            self.sink.add(self.pipeline.advance(now))

    async def _flush_if_due(self) -> None:
        if not self.sink.due():
            return
        delay = 0.5
        while True:
            try:
                # The pipeline is not touched while this runs (we await it), so after_flush
                # (the state checkpoint) may read it from the worker thread.
                await asyncio.to_thread(self._flush_then_checkpoint)
            except Exception:  # retried inside the writer already; keep rows, back off, retry
                self.flush_errors += 1
                log.exception("flush to ClickHouse failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            return

    def _flush_then_checkpoint(self) -> None:
        self.sink.flush()
        if self.after_flush:
            self.after_flush()
