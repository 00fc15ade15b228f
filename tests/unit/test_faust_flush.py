"""processors/faust_flush.py: a full flush waits for every queued table write, however slow."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.producer import ProducerBuffer

from processors import faust_flush

HAND_OVER_S = 0.25  # longer than the 0.1 s after which Faust's own flush gave up


class _Buffer:
    """The parts of ``ProducerBuffer`` the flush uses; ``run`` is its hand-over task."""

    state = "running"

    def __init__(self, queued: int) -> None:
        self.message_sent = asyncio.Event()
        self.sent = 0
        self.queue = [self._message() for _ in range(queued)]

    def _message(self) -> Any:
        buffer = self

        class Channel:
            @staticmethod
            async def publish_message(fut: Any, wait: bool) -> None:
                await asyncio.sleep(HAND_OVER_S)
                buffer.sent += 1

        return type("Fut", (), {"message": type("Msg", (), {"channel": Channel})})()

    @property
    def size(self) -> int:
        return len(self.queue)

    async def run(self) -> None:  # ProducerBuffer._handle_pending
        while self.queue:
            fut = self.queue.pop(0)
            await ProducerBuffer._send_pending(self, fut)
            self.message_sent.set()


def test_full_flush_waits_for_slow_hand_overs_and_the_one_in_flight(monkeypatch: Any) -> None:
    faust_flush.install()
    faust_flush.install()  # idempotent
    monkeypatch.setattr(faust_flush, "WAIT_S", 0.05)

    async def scenario() -> tuple[int, int]:
        buf = _Buffer(queued=3)
        task = asyncio.ensure_future(buf.run())
        await asyncio.sleep(0.01)  # the first message is being handed over
        await ProducerBuffer.flush_atmost(buf, None)
        at_return = buf.sent
        await task
        return at_return, buf.sent

    assert asyncio.run(scenario()) == (3, 3)


def test_drained_needs_an_empty_queue_and_nothing_in_flight() -> None:
    assert faust_flush.drained(0, 0)
    assert not faust_flush.drained(1, 0)
    assert not faust_flush.drained(0, 1)
