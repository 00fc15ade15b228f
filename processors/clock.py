"""Event-time helpers: window flooring and the deadline heap with lazy invalidation.

There is no wall clock here: "now" is always an event time passed in by the caller.
"""

from __future__ import annotations

import heapq
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
        self._heap: list[tuple[int, str, str]] = []
        self._scheduled: dict[TimerKey, int] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, key: TimerKey, due: int | None) -> None:
        """Make sure ``key`` pops no later than ``due`` (None: nothing to do)."""
        if due is None:
            return
        held = self._scheduled.get(key)
        if held is None or due < held:
            self._scheduled[key] = due
            heapq.heappush(self._heap, (due, *key))

    def pop_due(self, now_ms: int, current: Callable[[TimerKey], int | None]) -> Iterator[TimerKey]:
        """Yield each key whose current due time (``current(key)``) is ``<= now_ms``.

        The caller handles a yielded key (which changes its due time) and calls
        ``schedule`` with the new due time before asking for the next one.
        """
        while self._heap and self._heap[0][0] <= now_ms:
            due, family, name = heapq.heappop(self._heap)
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
