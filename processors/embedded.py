"""Embedded adapter: in-process bus -> partition runtime -> insert thread, on the event loop.

A loop and nothing else: take what is queued (up to ``DRAIN_BATCH``), ``feed`` it, flush
when due; while input is quiet, advance the event clock by wall time so timeouts and
windows still come due. Processing runs on the event loop in slices; inserts run in the
engine's insert thread, so hooks keep being answered while ClickHouse writes.

When the store stalls (an insert running longer than ``stall_s``), what is only in memory
goes to the disk spool -- the envelopes of the batch being written and of the one being
collected, and the queued ones -- and the bus spills every new envelope there, in order, so
that a crash loses at most about one batch interval of hooks. Once the store answers again
the spool is read back (envelopes already applied change nothing) and the bus returns to
memory. At the end of input the final flush waits at most ``stop_timeout_s``; what is not
written by then is spooled for the next start. docs/production.md#storage-stalls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from events.bus import InMemoryBus
from events.envelope import Envelope, encode
from processors.clock import EventClock, wall_ms

log = logging.getLogger(__name__)

DRAIN_BATCH = 512  # envelopes handled per loop turn before yielding to the hook path
POLL_S = 0.05  # how often a waiting flush looks at the insert thread
READY_POLL_S = 0.002  # how often a runner whose engine is not ready looks again


Envelopes = Sequence[Envelope]
Bodies = Sequence[str | None] | None  # each envelope's body as JSON text, when kept


class Engine(Protocol):
    """What the runner drives (``wcs_analytics.store.Store``, ``ProcessStore``)."""

    def feed(
        self, envelopes: Envelopes, bodies: Bodies = None, wall: int | None = None
    ) -> None: ...
    def advance(self, now_ms: int) -> None: ...
    def due(self) -> bool: ...
    def flush(self, windows: bool = True, timeout: float | None = None) -> bool: ...
    def finish(self, timeout: float | None = None) -> bool: ...
    def stalled_s(self) -> float: ...
    def stall_cause(self) -> str: ...
    def unwritten(self) -> list[bytes]: ...
    def ready(self) -> bool: ...
    def take_rejected(self) -> list[tuple[Envelope, str]]: ...
    @property
    def clock_ms(self) -> int | None: ...


class Spool(Protocol):
    """The overflow spool (``wcs_analytics.spool.OverflowSpool``)."""

    def append_lines(self, lines: list[bytes]) -> int: ...
    def rotate(self) -> None: ...
    def files(self) -> list[Path]: ...
    def read(self, path: Path) -> Iterator[Envelope]: ...
    def remove(self, path: Path) -> None: ...


class EmbeddedRunner:
    """Consumes the bus until it is closed, then finishes (flush-then-exit, bounded)."""

    def __init__(
        self,
        bus: InMemoryBus,
        engine: Engine,
        clock: EventClock,
        spool: Spool,
        tick_s: float = 0.25,
        stall_s: float = 1.0,
        stop_timeout_s: float = 30.0,
        wall: Callable[[], int] = wall_ms,
    ) -> None:
        self.bus, self.engine, self.clock, self.spool = bus, engine, clock, spool
        self.tick_s, self.stall_s, self.stop_timeout_s = tick_s, stall_s, stop_timeout_s
        self._wall = wall
        self.processed = 0
        self.stalls = 0  # times the store stalled and memory went to the spool
        self.spooled_at_stop = 0  # envelopes spooled because the last flush did not finish
        self.finished_in_time = True

    async def run(self) -> None:
        while True:
            if self.bus.spilling and self.bus.depth() == 0 and not self.bus.closed:
                await self._read_spool_back()
            if not self.engine.ready():  # processing elsewhere is behind: the bus holds the rest
                await asyncio.sleep(READY_POLL_S)
                await self._flush_if_due()
                continue
            try:
                first = await asyncio.wait_for(self.bus.get(), self.tick_s)
            except TimeoutError:
                if self.bus.closed and self.bus.depth() == 0:
                    break
                self._tick()
                await self._flush_if_due()
                continue
            more = self._drain(first)
            await self._flush_if_due()
            if not more:
                break
        await self._finish()

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
        self._feed(batch)
        return more

    def _feed(self, batch: list[Envelope]) -> None:
        if batch:
            self.engine.feed(batch, wall=self._wall())
            self.processed += len(batch)
            self.clock.observe(self.engine.clock_ms)
        for envelope, reason in self.engine.take_rejected():
            log.warning("envelope %r not processed: %s", envelope["id"], reason)

    def _tick(self) -> None:
        now = self.clock.now()
        if now is not None:
            self.engine.advance(now)

    async def _flush_if_due(self, force: bool = False) -> None:
        if not force and not self.engine.due():
            return
        while not self.engine.flush(timeout=0):  # the previous insert is still running
            if self.engine.stalled_s() >= self.stall_s and not self.bus.spilling:
                self._spill()
            if self.bus.closed:
                return  # stopping: the bounded finish takes over
            await asyncio.sleep(POLL_S)

    def _spill(self) -> None:
        """The store stalled: keep on disk what is only in memory, spool what comes next."""
        self.stalls += 1
        self.bus.spilling = True
        queued, _ = self.bus.take_queued()
        lines = self.engine.unwritten() + [encode(env) + b"\n" for env in queued]
        kept = self.spool.append_lines(lines)
        self.spool.rotate()
        stalled = self.engine.stalled_s()
        since = f" for {stalled:.1f}s" if math.isfinite(stalled) else ""  # inf: it failed
        log.warning(
            "%s stalled%s: %d envelopes kept in the spool, new ones go there until it "
            "answers", self.engine.stall_cause(), since, kept,
        )  # fmt: skip

    async def _read_spool_back(self) -> None:
        """The store answers again: apply what was spooled (in order), then use memory. A
        pass applies every file there is, waits until it is written, removes the files;
        what arrived meanwhile is in a new file for the next pass."""
        while True:
            self.spool.rotate()
            files = self.spool.files()
            if not files:
                self.bus.spilling = False
                log.info("the spool is read back: hooks go through memory again")
                return
            for path in files:
                batch: list[Envelope] = []
                for envelope in self.spool.read(path):
                    batch.append(envelope)
                    if len(batch) >= DRAIN_BATCH:
                        self._feed(batch)
                        batch = []
                        await self._flush_if_due()
                        await asyncio.sleep(0)  # hooks first
                        if self.bus.closed:
                            return  # the files stay for the next start
                self._feed(batch)
            await self._flush_if_due(force=True)
            while self.engine.stalled_s() > 0:  # written, then the files can go
                if self.bus.closed:
                    return
                await asyncio.sleep(POLL_S)
            for path in files:
                self.spool.remove(path)

    async def _finish(self) -> None:
        started = time.monotonic()
        done = await asyncio.to_thread(self.engine.finish, self.stop_timeout_s)
        self.finished_in_time = done
        if not done:
            lines = self.engine.unwritten()
            self.spooled_at_stop = self.spool.append_lines(lines)
            log.warning(
                "stopping: ClickHouse did not take the last rows within %.0fs; %d envelopes "
                "spooled for the next start", time.monotonic() - started, self.spooled_at_stop,
            )  # fmt: skip
