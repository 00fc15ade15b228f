"""Fix: Faust 0.15.3 could commit input offsets before the table writes they depend on.

Table writes (changelog records) queue in Faust's ``ProducerBuffer``; a task hands them
to the producer one by one. Before committing offsets, Faust calls
``producer.flush()``, whose ``buffer.flush()`` is meant to drain that queue, but
``ProducerBuffer.flush_atmost(None)`` gives up as soon as one message takes longer
than 0.1 s to hand over (a busy CPU, a full accumulator) and returns with writes still
queued, and it never waits for the message being handed over. The commit then goes
out anyway; a SIGKILL right after it loses table writes of committed records: a
restarted worker resumes after them on states that lack them (seen as a lost
keep-alive and as a call closed by timeout after its FINISH had been processed,
docs/worker.md#crash-consistency).

``install()`` patches the class (before any buffer starts) so that a full flush
waits until the queue is empty AND no message is being handed over. The bounded
flush used for back-pressure (``flush_atmost(n)``) keeps Faust's behaviour.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.producer import ProducerBuffer

log = logging.getLogger(__name__)

WAIT_S = 1.0  # between checks; a full flush has no deadline (the commit must not go first)


def drained(size: int, in_flight: int) -> bool:
    """True when nothing is queued and nothing is being handed to the producer."""
    return size == 0 and in_flight == 0


def install() -> None:
    """Patch ``ProducerBuffer`` (idempotent)."""
    if getattr(ProducerBuffer, "_wcs_full_flush", False):
        return
    send, bounded = ProducerBuffer._send_pending, ProducerBuffer.flush_atmost

    async def _send_pending(self: Any, fut: Any) -> None:
        self._wcs_in_flight = getattr(self, "_wcs_in_flight", 0) + 1
        try:
            await send(self, fut)
        finally:
            self._wcs_in_flight -= 1

    async def flush_atmost(self: Any, max_messages: int | None) -> int:
        if max_messages is not None:
            return int(await bounded(self, max_messages))
        waited = 0
        while not drained(self.size, getattr(self, "_wcs_in_flight", 0)):
            if self.state != "running" and self.size:
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            try:
                await asyncio.wait_for(self.message_sent.wait(), timeout=WAIT_S)
            except TimeoutError:
                waited += 1
                log.warning("flush: %d table writes still queued after %d s", self.size, waited)
        return 0

    ProducerBuffer._send_pending = _send_pending  # type: ignore[method-assign]
    ProducerBuffer.flush_atmost = flush_atmost  # type: ignore[method-assign]
    ProducerBuffer._wcs_full_flush = True  # type: ignore[attr-defined]
