"""All windows held by one pipeline, bucketed by window start (few buckets: retention/window)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from events.tables import Row
from processors import windows as w
from processors.clock import window_start
from processors.config import ProcessorConfig


class WindowSink(Protocol):
    """What the pipeline needs from its windows (a ``WindowStore``, or a forwarder)."""

    @property
    def late_dropped(self) -> int: ...

    def add(self, table: str, received_at: int, dims: tuple[str, ...], counter: str) -> bool: ...
    def advance(self, now_ms: int) -> list[Row]: ...
    def flush(self) -> list[Row]: ...


OnWindowChange = Callable[[int, w.WindowKey, "w.Window | None"], None]


class WindowStore:
    """Mutable holder of ``Window`` states; ``advance`` emits due windows, drops old ones.

    ``watermark`` is the highest ``now_ms`` passed to ``advance``: a hit for a window
    whose retention ended before it is dropped and counted in ``late_dropped``.
    ``on_change(start, key, window | None)`` is called after every window change
    (None: dropped past retention) so a caller can persist windows one by one.
    """

    def __init__(self, cfg: ProcessorConfig, on_change: OnWindowChange | None = None) -> None:
        self._cfg = cfg
        self._on_change = on_change
        self._buckets: dict[int, dict[w.WindowKey, w.Window]] = {}
        self._dirty: dict[int, set[w.WindowKey]] = {}
        self.watermark: int | None = None
        self.late_dropped = 0

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def _end(self, start: int) -> int:
        return start + self._cfg.window_ms

    def add(self, table: str, received_at: int, dims: tuple[str, ...], counter: str) -> bool:
        """Count one hit at ``received_at``; False (and ``late_dropped`` + 1) when too late."""
        start = window_start(received_at, self._cfg.window_ms)
        retained_until = self._end(start) + self._cfg.window_retention_ms
        if self.watermark is not None and self.watermark > retained_until:
            self.late_dropped += 1
            return False
        bucket = self._buckets.setdefault(start, {})
        bucket[(table, dims)] = w.add(bucket.get((table, dims)), counter)
        self._dirty.setdefault(start, set()).add((table, dims))
        self._changed(start, (table, dims), bucket[(table, dims)])
        return True

    def advance(self, now_ms: int) -> list[Row]:
        """Emit changed windows past their lateness, then drop those past retention."""
        self.watermark = now_ms if self.watermark is None else max(self.watermark, now_ms)
        rows: list[Row] = []
        for start in sorted(self._dirty):
            if now_ms <= self._end(start) + self._cfg.window_lateness_ms:
                break
            rows += self._emit(start)
        for start in sorted(self._buckets):
            if now_ms <= self._end(start) + self._cfg.window_retention_ms:
                break
            for key in self._buckets.pop(start):  # retention >= lateness: emitted above
                self._changed(start, key, None)
        return rows

    def flush(self) -> list[Row]:
        """Emit every window that changed since its last emission, due or not."""
        rows: list[Row] = []
        for start in sorted(self._dirty):
            rows += self._emit(start)
        return rows

    def _emit(self, start: int) -> list[Row]:
        bucket = self._buckets[start]
        rows = []
        for key in sorted(self._dirty.pop(start)):
            bucket[key] = w.emitted(bucket[key])
            rows.append(w.render(start, key, bucket[key]))
            self._changed(start, key, bucket[key])
        return rows

    def _changed(self, start: int, key: w.WindowKey, window: w.Window | None) -> None:
        if self._on_change is not None:
            self._on_change(start, key, window)

    def load(self, start: int, key: w.WindowKey, window: w.Window) -> None:
        """Adopt a persisted window (restore); no callback."""
        self._buckets.setdefault(start, {})[key] = window
        if window.dirty:
            self._dirty.setdefault(start, set()).add(key)

    def to_dict(self) -> dict[str, Any]:
        held = [
            [start, table, list(dims), win.counts, win.version, win.dirty]
            for start, bucket in self._buckets.items()
            for (table, dims), win in bucket.items()
        ]
        return {"watermark": self.watermark, "late_dropped": self.late_dropped, "windows": held}

    @classmethod
    def from_dict(cls, cfg: ProcessorConfig, data: dict[str, Any]) -> WindowStore:
        store = cls(cfg)
        store.watermark, store.late_dropped = data["watermark"], data["late_dropped"]
        for start, table, dims, counts, version, dirty in data["windows"]:
            store.load(start, (table, tuple(dims)), w.Window(counts, version, dirty))
        return store
