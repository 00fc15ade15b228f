"""Time: window flooring, the deadline heap, and the event clock of the adapters.

The rules never read a wall clock: "now" is always an event time passed in by the
caller. ``EventClock`` is what an adapter passes: the highest ``received_at`` seen,
advanced by wall time while live input is quiet. ``wall_ms`` is the one wall-clock
helper of the project.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator

TimerKey = tuple[str, str]  # (family, entity key)


def window_start(received_at: int, window_ms: int) -> int:
    """Start of the tumbling window holding ``received_at`` (floored, UTC epoch ms)."""
    return received_at - received_at % window_ms


class Timers:
    """Min-heap of ``(due_ms, family, key)``; never scans all entities.

    Invariant: every scheduled key has one heap entry at or before its current due
    time. ``schedule`` pushes only when the due time moves earlier than the entry
    already held; ``pop_due`` re-pushes an entry whose entity's due time moved later
    and drops entries whose entity is gone, so due work comes out ordered by
    ``(actual due, family, key)`` whatever the push history was.
    """

    def __init__(self) -> None:
        self.heap: list[tuple[int, str, str]] = []  # read-only outside (the runtime peeks)
        self._scheduled: dict[TimerKey, int] = {}

    def __len__(self) -> int:
        return len(self.heap)

    @property
    def next_due(self) -> int | None:
        """The earliest entry (at or before the earliest actual due time), None if empty."""
        return self.heap[0][0] if self.heap else None

    def schedule(self, key: TimerKey, due: int | None) -> None:
        """Make sure ``key`` pops no later than ``due`` (None: nothing to do)."""
        if due is None:
            return
        held = self._scheduled.get(key)
        if held is None or due < held:
            self._scheduled[key] = due
            heapq.heappush(self.heap, (due, *key))

    def pop_due(self, now_ms: int, current: Callable[[TimerKey], int | None]) -> Iterator[TimerKey]:
        """Yield each key whose current due time (``current(key)``) is ``<= now_ms``.

        The caller handles a yielded key (which changes its due time) and calls
        ``schedule`` with the new due time before asking for the next one.
        """
        while self.heap and self.heap[0][0] <= now_ms:
            due, family, name = heapq.heappop(self.heap)
            key = (family, name)
            if self._scheduled.get(key) != due:
                continue  # an older duplicate entry
            del self._scheduled[key]
            actual = current(key)
            if actual is None:
                continue
            if actual != due:
                self.schedule(key, actual)  # moved later: pop again in due order
                continue
            yield key


def wall_ms() -> int:
    """Wall-clock Unix epoch milliseconds (UTC)."""
    return time.time_ns() // 1_000_000


class EventClock:
    """Event time: the highest received_at seen, advanced by wall time while input is quiet.

    Replays pass ``follow_wall=False`` so the clock is a function of the input only.
    """

    def __init__(self, follow_wall: bool, wall: Callable[[], int] = wall_ms) -> None:
        self._follow_wall = follow_wall
        self._wall_ms = wall
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
