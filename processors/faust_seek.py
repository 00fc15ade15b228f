"""Fix for a Faust 0.15.3 recovery race that stopped a restarted worker committing.

After table recovery Faust resumes the stream partitions and only then awaits
``Consumer.perform_seek``: one committed-offset request per partition, with the flow
already running. Records delivered meanwhile are processed, acked and possibly
committed (the commit timer runs too). ``perform_seek`` then overwrites the
consumer's committed offsets with the values it fetched before that commit, and
``Consumer._new_offset`` sees a gap between the stale committed offset and the
acks that follow the commit: it never commits that partition again
(docs/worker.md#restart-stall).

The fix keeps Faust's seek but never lets it move a partition's committed or read
offset back behind what this consumer did itself in the same assignment (Faust
forgets both when partitions are revoked, so any offset it still holds is from
after the assignment). Records that aiokafka re-fetches after its seek are then
dropped by Faust's read offset check: they were delivered already.
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
    """Wrap ``consumer.seek_to_committed`` (awaited by ``perform_seek`` before it updates
    its bookkeeping) so the committed offsets it returns are never older than ours, and
    ``perform_seek`` so that it does not move a read offset back either (records
    delivered during the seek were handed to the agents; Faust would otherwise treat
    the distance to the next record as a gap of acked offsets, possibly committing
    rows the sink holds but has not inserted yet)."""
    if getattr(consumer, "_wcs_seek_guarded", False):
        return
    fetch, perform = consumer.seek_to_committed, consumer.perform_seek
    reads: dict[Any, int | None] = {}

    async def seek_to_committed() -> dict[Any, int | None]:
        fetched = await fetch()
        merged = later(fetched, consumer._committed_offset)
        kept = sorted(f"{tp.topic}[{tp.partition}]" for tp in merged if merged[tp] != fetched[tp])
        if kept:
            log.info("seek: kept offsets committed during the seek on %d partitions: %s",
                     len(kept), ", ".join(kept))  # fmt: skip
        reads.clear()
        reads.update(consumer._read_offset)
        return merged

    async def perform_seek() -> None:
        await perform()
        consumer._read_offset.update(later(consumer._read_offset, reads))
        reads.clear()

    consumer.seek_to_committed = seek_to_committed
    consumer.perform_seek = perform_seek
    consumer._wcs_seek_guarded = True
