"""The embedded adapter: every queued envelope reaches the sink; the clock follows event time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest

from events.bus import InMemoryBus
from events.catalog import resolve
from events.envelope import Envelope, make
from events.tables import Row
from processors.config import ProcessorConfig
from processors.embedded import DRAIN_BATCH, EmbeddedRunner, EventClock
from processors.pipeline import Pipeline


class ListSink:
    def __init__(self, due_every: int = 0) -> None:
        self.rows: list[Row] = []
        self.envelopes: list[Envelope] = []
        self.flushes = 0
        self.due_every = due_every
        self._since_flush = 0

    @property
    def pending(self) -> int:
        return self._since_flush

    def add(self, rows: Iterable[Row]) -> None:
        self.rows.extend(rows)

    def add_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        self._since_flush += 1

    def due(self) -> bool:
        return self.due_every > 0 and self._since_flush >= self.due_every

    def flush(self) -> int:
        self.flushes += 1
        written, self._since_flush = self._since_flush, 0
        return written


def _envelope(n: int) -> Envelope:
    body: dict[str, Any] = {
        "nodeId": "n",
        "sessionId": "s",
        "callId": f"c{n % 37}",
        "status": "RING",
    }
    return make(resolve("CallStatusEvent"), body, 1_000_000 + n, f"id-{n}")


async def _run(count: int, sink: ListSink, checkpoints: list[int]) -> EmbeddedRunner:
    bus = InMemoryBus(count + 10, on_overflow=lambda e: pytest.fail("overflow"))
    for n in range(count):
        bus.publish(_envelope(n))
    await bus.close()
    runner = EmbeddedRunner(
        bus,
        Pipeline(ProcessorConfig()),
        sink,
        EventClock(follow_wall=False),
        after_flush=lambda: checkpoints.append(len(sink.envelopes)),
    )
    await runner.run()
    return runner


@pytest.mark.parametrize("count", [1, DRAIN_BATCH - 1, DRAIN_BATCH, DRAIN_BATCH + 1, 2000])
@pytest.mark.parametrize("due_every", [0, 100, DRAIN_BATCH])
def test_every_envelope_queued_reaches_the_sink(count: int, due_every: int) -> None:
    sink = ListSink(due_every)
    checkpoints: list[int] = []
    runner = asyncio.run(_run(count, sink, checkpoints))
    assert runner.processed == count
    assert [e["id"] for e in sink.envelopes] == [f"id-{n}" for n in range(count)]
    assert sink.flushes >= 1  # the end of input always flushes
    if due_every:
        assert len(checkpoints) == count // due_every  # checkpoint after each due flush


def test_event_clock_replay_is_event_time_only() -> None:
    wall = [5_000]
    clock = EventClock(follow_wall=False, wall_ms=lambda: wall[0])
    assert clock.now() is None
    clock.observe(100)
    clock.observe(50)  # late event: the clock never goes back
    wall[0] += 10_000
    assert clock.now() == 100


def test_event_clock_live_advances_by_wall_time_while_quiet() -> None:
    wall = [5_000]
    clock = EventClock(follow_wall=True, wall_ms=lambda: wall[0])
    clock.observe(100)
    wall[0] += 2_500
    assert clock.now() == 2_600
    clock.observe(200)  # a new event resets the quiet period
    assert clock.now() == 200
