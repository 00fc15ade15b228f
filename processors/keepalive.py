"""Keep-alive times of one stream and the gap rows they imply (table ``keepalive_gaps``).

A stream keeps its newest ``window`` distinct keep-alive times sorted. A time older
than the oldest kept one (when the window is full) is ignored for gaps and counts.
Gaps are consecutive kept times ``t1 < t2`` with ``t2 - t1 > threshold``; the set of
emitted gaps is diffed against the new set on every change, so a late keep-alive
inside an emitted gap re-emits that gap shortened (or deleted) and emits the new one.
Changes wait in ``pending`` (one per ``gap_start``, the latest wins) until the runtime
renders them at its next flush.
"""

from __future__ import annotations

from bisect import insort
from itertools import pairwise
from typing import Any

Gap = tuple[int, int]  # (gap_start, gap_end)
GapChange = tuple[int, bool, int]  # (gap_end, is_deleted, version), keyed by gap_start


class KeepAlives:
    __slots__ = ("dropped", "dropped_max_gap", "gap_version", "gaps", "pending", "times")

    def __init__(self) -> None:
        self.times: list[int] = []  # sorted distinct, the newest `window` only
        self.dropped = 0  # times pushed out of the window (still counted)
        self.dropped_max_gap = 0  # largest gap between a pushed-out time and its successor
        self.gaps: dict[int, int] = {}  # emitted, not deleted: gap_start -> gap_end
        self.gap_version = 0  # version of the last gap row made for this stream
        self.pending: dict[int, GapChange] = {}  # gap rows not rendered yet

    def to_json(self) -> list[Any]:
        pending = [[start, *change] for start, change in self.pending.items()]
        gaps = list(self.gaps.items())
        return [self.times, self.dropped, self.dropped_max_gap, gaps, self.gap_version, pending]

    @classmethod
    def from_json(cls, data: list[Any]) -> KeepAlives:
        ka = cls()
        ka.times, ka.dropped, ka.dropped_max_gap = list(data[0]), data[1], data[2]
        ka.gaps = {start: end for start, end in data[3]}
        ka.gap_version = data[4]
        ka.pending = {p[0]: (p[1], bool(p[2]), p[3]) for p in data[5]}
        return ka

    @property
    def count(self) -> int:
        return self.dropped + len(self.times)

    @property
    def max_gap(self) -> int:
        return max([self.dropped_max_gap, *(b - a for a, b in pairwise(self.times))])


def observe(ka: KeepAlives, t: int, window: int, threshold: int) -> bool:
    """Add the keep-alive at ``t`` in place; True when anything changed."""
    times = ka.times
    in_order = not times or t > times[-1]
    if in_order:
        times.append(t)  # the common case: only the new last pair can be a new gap
    elif t in times or (len(times) >= window and t < times[0]):
        return False
    else:
        insort(times, t)
    if len(times) > window:
        oldest = times.pop(0)
        ka.dropped += 1
        ka.dropped_max_gap = max(ka.dropped_max_gap, times[0] - oldest)
        ka.gaps.pop(oldest, None)  # final: nothing can split it now
    if not in_order:
        _diff(ka, threshold)
    elif len(times) >= 2 and t - times[-2] > threshold:
        ka.gaps[times[-2]] = t
        ka.gap_version += 1
        ka.pending[times[-2]] = (t, False, ka.gap_version)
    return True


def _diff(ka: KeepAlives, threshold: int) -> None:
    """Record the gap rows that change when the wanted gaps differ from the emitted ones."""
    wanted = {a: b for a, b in pairwise(ka.times) if b - a > threshold}
    if wanted == ka.gaps:
        return
    for start in sorted(ka.gaps.keys() - wanted.keys()):
        ka.gap_version += 1
        ka.pending[start] = (ka.gaps[start], True, ka.gap_version)
    for start, end in sorted(wanted.items()):
        if ka.gaps.get(start) != end:
            ka.gap_version += 1
            ka.pending[start] = (end, False, ka.gap_version)
    ka.gaps = wanted
