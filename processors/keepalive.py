"""Keep-alive times of one stream and the gap rows they imply (table ``keepalive_gaps``).

A stream keeps its newest ``window`` distinct keep-alive times sorted. A time older
than the oldest kept one (when the window is full) is ignored for gaps and counts.
Gaps are consecutive kept times ``t1 < t2`` with ``t2 - t1 > threshold``; the set of
emitted gaps is diffed against the new set on every change, so a late keep-alive
inside an emitted gap re-emits that gap shortened (or deleted) and emits the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

Gap = tuple[int, int]  # (gap_start, gap_end)
GapChange = tuple[int, int, bool, int]  # (gap_start, gap_end, is_deleted, version)


@dataclass(frozen=True, slots=True)
class KeepAlives:
    times: tuple[int, ...] = ()  # sorted distinct, the newest `window` only
    dropped: int = 0  # times pushed out of the window (still counted)
    dropped_max_gap: int = 0  # largest gap between a pushed-out time and its successor
    gaps: tuple[Gap, ...] = ()  # emitted, not deleted, with gap_start still in `times`
    gap_version: int = 0  # version of the last gap row emitted for this stream

    @property
    def count(self) -> int:
        return self.dropped + len(self.times)

    @property
    def max_gap(self) -> int:
        pairs = pairwise(self.times)
        return max([self.dropped_max_gap, *(b - a for a, b in pairs)])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeepAlives:
        return cls(
            tuple(data["times"]),
            data["dropped"],
            data["dropped_max_gap"],
            tuple((a, b) for a, b in data["gaps"]),
            data["gap_version"],
        )


def _insert(ka: KeepAlives, t: int, window: int) -> KeepAlives | None:
    """``ka`` with ``t`` added (oldest pushed out past ``window``); None when ignored."""
    if t in ka.times or (len(ka.times) >= window and t < ka.times[0]):
        return None
    times = tuple(sorted((*ka.times, t)))
    if len(times) <= window:
        return replace(ka, times=times)
    oldest, successor = times[0], times[1]
    return replace(
        ka,
        times=times[1:],
        dropped=ka.dropped + 1,
        dropped_max_gap=max(ka.dropped_max_gap, successor - oldest),
        gaps=tuple(g for g in ka.gaps if g[0] != oldest),  # final: nothing can split it now
    )


def observe(
    ka: KeepAlives, t: int, window: int, threshold: int
) -> tuple[KeepAlives, list[GapChange]]:
    """Add the keep-alive at ``t``; returns the new state and the gap rows to emit."""
    new = _insert(ka, t, window)
    if new is None:
        return ka, []
    times = new.times
    wanted = {a: b for a, b in pairwise(times) if b - a > threshold}
    held = dict(new.gaps)
    version = new.gap_version
    changes: list[GapChange] = []
    for start, end in sorted(held.items()):
        if start not in wanted:
            version += 1
            changes.append((start, end, True, version))
    for start, end in sorted(wanted.items()):
        if held.get(start) != end:
            version += 1
            changes.append((start, end, False, version))
    return replace(new, gaps=tuple(sorted(wanted.items())), gap_version=version), changes
