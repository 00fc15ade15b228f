"""The worker runs one alert-detector step at a time (its ClickHouse client takes one query
at a time): the timer's step and shutdown's final step must not overlap."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from processors.faust_app import leader_step


class SlowLeader:
    def __init__(self) -> None:
        self.running = 0
        self.overlaps = 0
        self.finals: list[bool] = []
        self._lock = threading.Lock()

    def step(self, final: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            self.running += 1
            if self.running > 1:
                self.overlaps += 1
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
        self.finals.append(final)
        return []


def test_concurrent_steps_run_one_after_the_other() -> None:
    leader = SlowLeader()
    made: list[SlowLeader] = []

    def factory() -> SlowLeader:
        made.append(leader)
        time.sleep(0.02)
        return leader

    async def main() -> None:
        holder: dict[str, Any] = {}
        await asyncio.gather(
            leader_step(holder, factory, None, None, final=False),
            leader_step(holder, factory, None, None, final=True),
            leader_step(holder, factory, None, None, final=False),
        )

    asyncio.run(main())
    assert leader.overlaps == 0
    assert len(made) == 1  # one detector, not one per concurrent caller
    assert sorted(leader.finals) == [False, False, True]
