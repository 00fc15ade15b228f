"""``wcs-analytics worker`` whose recovery seek answers late (test-only entry point).

Faust awaits ``seek_to_committed`` after it resumed the stream partitions; here the
committed offsets it fetched come back ``WCS_TEST_SEEK_DELAY_S`` late, so records
flow and get committed meanwhile: the window of the recovery race in
processors/faust_seek.py, made wide enough to hit every time. After each seek it
logs ``seek moved committed offsets back on N partitions`` when the consumer's
committed offsets ended up behind what it had committed itself (the race's damage).
``WCS_TEST_NO_SEEK_GUARD=1`` runs without the guard (to see that; not used by the
suite).

Usage: python -m tests.integration.slow_seek_worker worker --kafka ... (cli arguments)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as driver

log = logging.getLogger("slow_seek_worker")
DELAY_S = float(os.environ.get("WCS_TEST_SEEK_DELAY_S", "15"))
_fetch = driver.Consumer.seek_to_committed
_perform = driver.Consumer.perform_seek
_ours: dict[Any, int] = {}


async def _late(self: Any) -> Mapping[Any, int]:
    fetched = await _fetch(self)
    await asyncio.sleep(DELAY_S)
    _ours.clear()
    _ours.update({tp: o for tp, o in self._committed_offset.items() if o is not None})
    return fetched


async def _checked(self: Any) -> None:
    await _perform(self)
    back = [tp for tp, o in _ours.items() if (self._committed_offset.get(tp) or 0) < o]
    log.warning("seek moved committed offsets back on %d partitions", len(back))


driver.Consumer.seek_to_committed = _late  # type: ignore[method-assign]
driver.Consumer.perform_seek = _checked  # type: ignore[method-assign]

if os.environ.get("WCS_TEST_NO_SEEK_GUARD") == "1":
    import processors.faust_worker as faust_worker

    faust_worker.guard_seek = lambda consumer: None  # type: ignore[assignment]

if __name__ == "__main__":
    from wcs_analytics.cli import main

    sys.exit(main())
