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

from array import array
from bisect import insort
from itertools import pairwise
from typing import Any

Gap = tuple[int, int]  # (gap_start, gap_end)
GapChange = tuple[int, bool, int]  # (gap_end, is_deleted, version), keyed by gap_start
NONE: dict[Any, Any] = {}  # shared empty mapping until a stream has gaps (never mutated)


class KeepAlives:
    __slots__ = ("base", "dropped", "dropped_max_gap", "gap_version", "gaps", "pending", "times")

    def __init__(self) -> None:
        # sorted distinct, the newest `window` only, as offsets from `base` (4 bytes each; 8
        # once a stream's keep-alives span more than 24 days)
        self.times = array("i")
        self.base = 0
        self.dropped = 0  # times pushed out of the window (still counted)
        self.dropped_max_gap = 0  # largest gap between a pushed-out time and its successor
        self.gaps: dict[int, int] = NONE  # emitted, not deleted: gap_start -> gap_end
        self.gap_version = 0  # version of the last gap row made for this stream
        self.pending: dict[int, GapChange] = NONE  # gap rows not rendered yet

    def to_json(self) -> list[Any]:
        pending = [[start, *change] for start, change in self.pending.items()]
        gaps = list(self.gaps.items())
        times = [self.base + t for t in self.times]
        return [times, self.dropped, self.dropped_max_gap, gaps, self.gap_version, pending]

    @classmethod
    def from_json(cls, data: list[Any]) -> KeepAlives:
        ka = cls()
        for t in data[0]:
            _append(ka, t)
        ka.dropped, ka.dropped_max_gap = data[1], data[2]
        ka.gaps = {start: end for start, end in data[3]} or NONE
        ka.gap_version = data[4]
        ka.pending = {p[0]: (p[1], bool(p[2]), p[3]) for p in data[5]} or NONE
        return ka

    @property
    def count(self) -> int:
        return self.dropped + len(self.times)

    @property
    def max_gap(self) -> int:
        return max([self.dropped_max_gap, *(b - a for a, b in pairwise(self.times))])


def _offset(ka: KeepAlives, t: int) -> int:
    """``t`` as an offset from ``base`` (the first keep-alive), widening the array when the
    offset does not fit 32 bits."""
    if not ka.times and not ka.dropped:
        ka.base = t
    offset = t - ka.base
    if ka.times.typecode == "i" and not -(2**31) <= offset < 2**31:
        ka.times = array("q", ka.times)
    return offset


def _append(ka: KeepAlives, t: int) -> None:
    ka.times.append(_offset(ka, t))


def observe(ka: KeepAlives, t: int, window: int, threshold: int) -> bool:
    """Add the keep-alive at ``t`` in place; True when anything changed."""
    o = _offset(ka, t)
    times, base = ka.times, ka.base
    in_order = not times or o > times[-1]
    if in_order:
        times.append(o)  # the common case: only the new last pair can be a new gap
    elif o in times or (len(times) >= window and o < times[0]):
        return False
    else:
        insort(times, o)
    if len(times) > window:
        oldest = times.pop(0)
        ka.dropped += 1
        ka.dropped_max_gap = max(ka.dropped_max_gap, times[0] - oldest)
        if base + oldest in ka.gaps:
            del ka.gaps[base + oldest]  # final: nothing can split it now
    if not in_order:
        _diff(ka, threshold)
    elif len(times) >= 2 and o - times[-2] > threshold:
        ka.gap_version += 1
        _own(ka)
        ka.gaps[base + times[-2]] = t
        ka.pending[base + times[-2]] = (t, False, ka.gap_version)
    return True


def _own(ka: KeepAlives) -> None:
    """Give the stream dicts of its own before the first gap is recorded."""
    if ka.gaps is NONE:
        ka.gaps = {}
    if ka.pending is NONE:
        ka.pending = {}


def _diff(ka: KeepAlives, threshold: int) -> None:
    """Record the gap rows that change when the wanted gaps differ from the emitted ones."""
    base = ka.base
    wanted = {base + a: base + b for a, b in pairwise(ka.times) if b - a > threshold}
    if wanted == ka.gaps:
        return
    _own(ka)
    for start in sorted(ka.gaps.keys() - wanted.keys()):
        ka.gap_version += 1
        ka.pending[start] = (ka.gaps[start], True, ka.gap_version)
    for start, end in sorted(wanted.items()):
        if ka.gaps.get(start) != end:
            ka.gap_version += 1
            ka.pending[start] = (end, False, ka.gap_version)
    ka.gaps = wanted or NONE
