"""Fix for a Faust 0.15.3 recovery race that stopped a restarted worker committing.

After table recovery Faust resumes the stream partitions and only then awaits
``Consumer.perform_seek``: one committed-offset request per partition, with the flow
already running. Records delivered meanwhile are processed, acked and possibly
committed (the commit timer runs too). ``perform_seek`` then overwrites the
consumer's committed offsets with the values it fetched before that commit, and
``Consumer._new_offset`` sees a gap between the stale committed offset and the
acks that follow the commit: it never commits that partition again
(docs/worker.md#restart-stall).

The fix stops the flow for the duration of the seek (no new deliveries, so no acks
from them) and never lets the seek move a partition's committed offset back behind a
commit this consumer made itself in the same assignment (Faust forgets its offsets
when partitions are revoked, so any offset it still holds is from after the
assignment): records the agents still held may be acked and committed meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


def later(
    fetched: Mapping[Any, int | None], ours: Mapping[Any, int | None]
) -> dict[Any, int | None]:
    """Per partition of ``fetched``, the later of its offset and ours (None: unknown)."""
    merged: dict[Any, int | None] = {}
    for tp, offset in fetched.items():
        mine = ours.get(tp)
        merged[tp] = mine if mine is not None and (offset is None or mine > offset) else offset
    return merged


def guard_seek(consumer: Any) -> None:
    """Wrap the consumer's ``perform_seek`` so that no record is delivered while it runs
    (the flow is stopped, as Faust itself does around a rebalance, and resumed after),
    and its ``seek_to_committed`` (awaited by ``perform_seek`` before it updates its
    bookkeeping) so the committed offsets it returns are never older than ours: records
    the agents still held when the flow stopped may be acked and committed meanwhile.
    After the seek, Faust re-reads every partition from its committed offset; records
    delivered before are processed again (at-least-once, idempotent here)."""
    if getattr(consumer, "_wcs_seek_guarded", False):
        return
    fetch, perform, stop = consumer.seek_to_committed, consumer.perform_seek, consumer.stop_flow
    running: list[bool] = []
    stops = [0]  # stop_flow calls: one by someone else during our seek (a rebalance) wins

    def stop_flow() -> None:
        stops[0] += 1
        stop()

    async def seek_to_committed() -> dict[Any, int | None]:
        fetched = await fetch()
        merged = later(fetched, consumer._committed_offset)
        kept = sorted(f"{tp.topic}[{tp.partition}]" for tp in merged if merged[tp] != fetched[tp])
        if kept:
            log.info("seek: kept offsets committed during the seek on %d partitions: %s",
                     len(kept), ", ".join(kept))  # fmt: skip
        return merged

    async def perform_seek() -> None:
        if running:  # Faust seeks again from getmany when records came while stopped
            await perform()
            return
        stopped = consumer.flow_active
        if stopped:
            consumer.stop_flow()
        ours = stops[0]
        running.append(True)
        try:
            await perform()
        finally:
            running.clear()
            if stopped and stops[0] == ours:  # else the one who stopped it resumes it
                consumer.resume_flow()

    consumer.seek_to_committed = seek_to_committed
    consumer.perform_seek = perform_seek
    consumer.stop_flow = stop_flow
    consumer._wcs_seek_guarded = True
