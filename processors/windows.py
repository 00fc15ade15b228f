"""Per-minute counters (``status_counts``, ``message_rates``) of one partition.

A window is ``(window_start, table, dims)`` holding counters. Small state, no event lists:
``add`` counts a hit, ``due`` emits the windows changed since their last emission once the
clock passed ``window_end + window_lateness_ms``, ``flush`` emits every changed window
(the still-open minute too, so dashboards see it), and windows are dropped once the clock
passes ``window_end + window_retention_ms``; a hit for a window that old is counted in
``late_dropped`` and ignored. An emitted row carries the full counts and ``version`` = the
sum of its counters: counts only grow, so a later emission always has a higher version and
re-counting the same input gives the same row.
"""

from __future__ import annotations

from typing import Any, Final

from events.tables import Row

DIMS: Final = {
    "status_counts": ("family", "status", "app_key", "node_id"),
    "message_rates": ("app_key", "node_id"),
}
COUNTERS: Final = {
    "status_counts": ("count",),
    "message_rates": ("sent", "received", "accepted", "failed", "imdn_delivered", "imdn_failed"),
}
INDEX: Final = {
    table: {name: i for i, name in enumerate(names)} for table, names in COUNTERS.items()
}

WindowKey = tuple[str, tuple[str, ...]]  # (table, dims values)


def render(start: int, key: WindowKey, counts: list[int]) -> Row:
    table, dims = key
    row: dict[str, Any] = {"window_start": start, **dict(zip(DIMS[table], dims, strict=True))}
    row.update(zip(COUNTERS[table], counts, strict=True))
    row["version"] = sum(counts)
    return table, row


class WindowCounts:
    """Mutable window counters of one partition; time is always an argument."""

    def __init__(self, window_ms: int, lateness_ms: int, retention_ms: int) -> None:
        self.window_ms, self.lateness_ms, self.retention_ms = window_ms, lateness_ms, retention_ms
        self.buckets: dict[int, dict[WindowKey, list[int]]] = {}
        self.dirty: dict[int, set[WindowKey]] = {}
        self.late_dropped = 0

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.buckets.values())

    def add(
        self, table: str, t: int, dims: tuple[str, ...], counter: str, clock: int | None
    ) -> bool:
        """Count one hit at ``t``; False (and ``late_dropped`` + 1) when its window's retention
        ended before ``clock`` (the partition's event clock before this event)."""
        start = t - t % self.window_ms
        if clock is not None and clock > start + self.window_ms + self.retention_ms:
            self.late_dropped += 1
            return False
        key = (table, dims)
        bucket = self.buckets.setdefault(start, {})
        counts = bucket.get(key)
        if counts is None:
            counts = bucket[key] = [0] * len(COUNTERS[table])
        counts[INDEX[table][counter]] += 1
        self.dirty.setdefault(start, set()).add(key)
        return True

    def next_due(self) -> int | None:
        """The smallest clock at which ``due`` has something to do (emit or drop)."""
        emit = min(self.dirty, default=None)
        drop = min(self.buckets, default=None)
        dues = []
        if emit is not None:
            dues.append(emit + self.window_ms + self.lateness_ms + 1)
        if drop is not None:
            dues.append(drop + self.window_ms + self.retention_ms + 1)
        return min(dues) if dues else None

    def due(self, now_ms: int) -> list[Row]:
        """Emit changed windows past their lateness, then drop those past retention."""
        rows: list[Row] = []
        for start in sorted(self.dirty):
            if now_ms <= start + self.window_ms + self.lateness_ms:
                break
            rows += self._emit(start)
        for start in sorted(self.buckets):
            if now_ms <= start + self.window_ms + self.retention_ms:
                break
            del self.buckets[start]  # retention >= lateness: emitted above
        return rows

    def flush(self) -> list[Row]:
        """Emit every window changed since its last emission, due or not."""
        rows: list[Row] = []
        for start in sorted(self.dirty):
            rows += self._emit(start)
        return rows

    def _emit(self, start: int) -> list[Row]:
        bucket = self.buckets[start]
        return [render(start, key, bucket[key]) for key in sorted(self.dirty.pop(start))]

    def to_json(self) -> dict[str, Any]:
        held = [
            [start, table, list(dims), counts, key in self.dirty.get(start, ())]
            for start, bucket in self.buckets.items()
            for key, counts in bucket.items()
            for table, dims in (key,)
        ]
        return {"late_dropped": self.late_dropped, "windows": held}

    def load(self, data: dict[str, Any]) -> None:
        """Adopt ``to_json`` output (restore)."""
        self.late_dropped = data["late_dropped"]
        for start, table, dims, counts, dirty in data["windows"]:
            key = (table, tuple(dims))
            self.buckets.setdefault(start, {})[key] = list(counts)
            if dirty:
                self.dirty.setdefault(start, set()).add(key)
