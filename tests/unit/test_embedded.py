"""The embedded adapter: every queued envelope reaches the engine in order, in bounded
batches; flushes when due (off the loop when the previous insert is still running); the
event clock advances the engine while input is quiet; the end of input finishes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.bus import InMemoryBus
from events.catalog import resolve
from events.envelope import Envelope, make
from processors.clock import EventClock
from processors.embedded import DRAIN_BATCH, Bodies, EmbeddedRunner, Envelopes

START = 1_767_225_600_000


class FakeEngine:
    """Records what the runner asks; ``due_every`` envelopes make a flush due; the first
    ``busy`` non-blocking flushes report the previous insert as still running (for
    ``stalled`` seconds); ``finishes`` is what ``finish`` answers."""

    def __init__(
        self, due_every: int = 0, busy: int = 0, stalled: float = 0.0, finishes: bool = True
    ) -> None:
        self.stalled, self.finishes = stalled, finishes
        self.unwritten_lines: list[bytes] = [b"fed-but-unwritten\n"]
        self.batches: list[list[Envelope]] = []
        self.walls: list[int | None] = []
        self.advanced: list[int] = []
        self.flushes: list[float | None] = []
        self.finished = 0
        self.due_every, self.busy = due_every, busy
        self._since_flush = 0
        self._clock: int | None = None
        self.not_ready = 0  # times ``ready`` answers False before it answers True
        self.rejected: list[tuple[Envelope, str]] = []

    def ready(self) -> bool:
        if self.not_ready > 0:
            self.not_ready -= 1
            return False
        return True

    def take_rejected(self) -> list[tuple[Envelope, str]]:
        rejected, self.rejected = self.rejected, []
        return rejected

    def feed(self, envelopes: Envelopes, bodies: Bodies = None, wall: int | None = None) -> None:
        self.batches.append(list(envelopes))
        self.walls.append(wall)
        self._since_flush += len(envelopes)
        latest = max(e["received_at"] for e in envelopes)
        self._clock = latest if self._clock is None else max(self._clock, latest)

    def advance(self, now_ms: int) -> None:
        self.advanced.append(now_ms)

    def due(self) -> bool:
        return self.due_every > 0 and self._since_flush >= self.due_every

    def flush(self, windows: bool = True, timeout: float | None = None) -> bool:
        self.flushes.append(timeout)
        if timeout == 0 and self.busy > 0:
            self.busy -= 1
            return False
        self._since_flush = 0
        return True

    def finish(self, timeout: float | None = None) -> bool:
        self.finished += 1
        return self.finishes

    def stalled_s(self) -> float:
        return self.stalled if self.busy > 0 else 0.0

    def stall_cause(self) -> str:
        return "the fake insert"

    def unwritten(self) -> list[bytes]:
        return list(self.unwritten_lines)

    @property
    def clock_ms(self) -> int | None:
        return self._clock


class FakeSpool:
    """The spool in memory: appended lines and envelopes, files to read back."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.envelopes: list[Envelope] = []
        self.rotations = 0
        self.pending: list[list[Envelope]] = []

    def append(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def append_lines(self, lines: list[bytes]) -> int:
        self.lines += lines
        return len(lines)

    def rotate(self) -> None:
        self.rotations += 1
        if self.envelopes:
            self.pending.append(self.envelopes)
            self.envelopes = []

    def files(self) -> list[Path]:
        return [Path(f"/spool/{i}") for i in range(len(self.pending))]

    def read(self, path: Path) -> Iterator[Envelope]:
        yield from self.pending[int(path.name)]

    def remove(self, path: Path) -> None:
        self.pending.pop(int(path.name))


def envelope_n(n: int) -> Envelope:
    body: dict[str, Any] = {"nodeId": "n", "sessionId": "s", "callId": f"c{n % 37}"}
    return make(resolve("CallStatusEvent"), {**body, "status": "RING"}, START + n, f"id-{n}")


async def _run(count: int, engine: FakeEngine) -> EmbeddedRunner:
    bus = InMemoryBus(count + 10, on_overflow=lambda e: pytest.fail("overflow"))
    for n in range(count):
        bus.publish(envelope_n(n))
    await bus.close()
    clock = EventClock(follow_wall=False)
    runner = EmbeddedRunner(bus, engine, clock, FakeSpool(), wall=lambda: 42)
    await runner.run()
    return runner


@pytest.mark.parametrize("count", [0, 1, DRAIN_BATCH - 1, DRAIN_BATCH, DRAIN_BATCH + 1, 2000])
@pytest.mark.parametrize("due_every", [0, 100, DRAIN_BATCH])
def test_every_envelope_queued_reaches_the_engine(count: int, due_every: int) -> None:
    engine = FakeEngine(due_every)
    runner = asyncio.run(_run(count, engine))
    assert runner.processed == count
    fed = [e["id"] for batch in engine.batches for e in batch]
    assert fed == [f"id-{n}" for n in range(count)]
    assert all(0 < len(batch) <= DRAIN_BATCH for batch in engine.batches)
    assert set(engine.walls) <= {42}  # the wall clock goes with each batch
    assert engine.finished == 1  # the end of input always finishes
    due_after, pending = 0, 0  # a flush after each batch that made one due
    for batch in engine.batches:
        pending += len(batch)
        if due_every and pending >= due_every:
            due_after, pending = due_after + 1, 0
    assert len(engine.flushes) == due_after
    assert due_after >= (count // DRAIN_BATCH if due_every else 0)


def test_an_engine_not_ready_holds_the_bus_and_then_gets_everything_in_order() -> None:
    engine = FakeEngine(due_every=100)
    engine.not_ready = 5  # processing in another process is behind for five looks
    runner = asyncio.run(_run(300, engine))
    assert engine.not_ready == 0 and runner.processed == 300
    assert [e["id"] for batch in engine.batches for e in batch] == [f"id-{n}" for n in range(300)]


def test_rejected_envelopes_are_reported_and_taken(caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeEngine()
    engine.rejected = [(envelope_n(7), "received_at in the future")]
    with caplog.at_level(logging.WARNING):
        asyncio.run(_run(3, engine))
    assert engine.rejected == []
    assert "'id-7' not processed: received_at in the future" in caplog.text


def test_a_busy_insert_is_polled_never_awaited_on_the_loop_and_stopping_ends_the_wait() -> None:
    engine = FakeEngine(due_every=1, busy=2)
    runner = asyncio.run(_run(3, engine))
    assert engine.flushes == [0]  # the bus is closed: the bounded finish takes over
    assert engine.finished == 1 and runner.stalls == 0


@pytest.mark.parametrize(
    ("stalled", "logged"),
    [
        (5.0, "the fake insert stalled for 5.0s: 1 envelopes"),
        (float("inf"), "the fake insert stalled: 1 envelopes"),
    ],
)
def test_a_stalled_store_spools_what_is_in_memory_then_reads_it_back(
    caplog: pytest.LogCaptureFixture, stalled: float, logged: str
) -> None:
    """An insert running past ``stall_s``: the fed-but-unwritten envelopes and the queued
    ones go to the spool, new hooks too (in order); once the store answers, the spool is
    applied and the bus uses memory again."""

    async def scenario() -> tuple[FakeEngine, FakeSpool, EmbeddedRunner, bool]:
        engine = FakeEngine(due_every=1, busy=10**9, stalled=stalled)
        spool = FakeSpool()
        bus = InMemoryBus(100, on_overflow=spool.append)
        runner = EmbeddedRunner(
            bus, engine, EventClock(follow_wall=False), spool, tick_s=0.01, stall_s=1.0
        )
        task = asyncio.create_task(runner.run())
        bus.publish(envelope_n(1))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if runner.stalls:
                break
        spilling = bus.spilling
        bus.publish(envelope_n(2))  # while stalled: straight to the spool
        engine.busy = 0  # the store answers again
        for _ in range(500):
            await asyncio.sleep(0.01)
            if not bus.spilling:
                break
        await bus.close()
        await task
        return engine, spool, runner, spilling

    with caplog.at_level(logging.WARNING, logger="processors.embedded"):
        engine, spool, runner, spilling = asyncio.run(scenario())
    assert runner.stalls == 1 and spilling
    assert logged + " kept in the spool" in caplog.text  # inf: a failed engine, no duration
    assert spool.lines == [b"fed-but-unwritten\n"]
    fed = [e["id"] for batch in engine.batches for e in batch]
    assert fed == ["id-1", "id-2"]  # the spooled hook was applied after the stall
    assert engine.finished == 1


def test_a_final_flush_that_does_not_finish_in_time_spools_what_is_unwritten() -> None:
    engine = FakeEngine(finishes=False)
    runner = asyncio.run(_run(3, engine))
    assert runner.spooled_at_stop == 1


def test_quiet_input_advances_the_engine_by_wall_time() -> None:
    wall = [5_000]

    async def scenario() -> FakeEngine:
        engine = FakeEngine()
        bus = InMemoryBus(10, on_overflow=lambda e: pytest.fail("overflow"))
        clock = EventClock(follow_wall=True, wall=lambda: wall[0])
        runner = EmbeddedRunner(bus, engine, clock, FakeSpool(), tick_s=0.01, wall=lambda: wall[0])
        task = asyncio.create_task(runner.run())
        bus.publish(envelope_n(7))
        for _ in range(500):  # until the runner saw the envelope and ticked once
            await asyncio.sleep(0.01)
            if engine.advanced:
                break
        wall[0] += 2_500
        seen = len(engine.advanced)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if len(engine.advanced) > seen:
                break
        await bus.close()
        await task
        return engine

    engine = asyncio.run(scenario())
    assert engine.advanced[0] == START + 7  # quiet, no wall time passed yet
    assert engine.advanced[-1] == START + 7 + 2_500
    assert engine.finished == 1


def test_event_clock_replay_is_event_time_only() -> None:
    wall = [5_000]
    clock = EventClock(follow_wall=False, wall=lambda: wall[0])
    assert clock.now() is None
    clock.observe(100)
    clock.observe(50)  # late event: the clock never goes back
    clock.observe(None)
    wall[0] += 10_000
    assert clock.now() == 100


def test_event_clock_live_advances_by_wall_time_while_quiet() -> None:
    wall = [5_000]
    clock = EventClock(follow_wall=True, wall=lambda: wall[0])
    clock.observe(100)
    wall[0] += 2_500
    assert clock.now() == 2_600
    clock.observe(200)  # a new event resets the quiet period
    assert clock.now() == 200
    wall[0] -= 1_000  # a wall clock stepping back never moves event time back
    assert clock.now() == 200
