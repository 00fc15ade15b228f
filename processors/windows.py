"""Per-minute counters (``status_counts``, ``message_rates``) with lateness and retention.

A window is ``(table, window_start, dims)`` holding counts and a version. It is
emitted (version + 1, full counts) once the event clock passes ``window_end +
window_lateness_ms`` and again whenever a late hit changes it, until the clock
passes ``window_end + window_retention_ms`` and it is dropped; a hit for a window
that old is counted in ``late_dropped`` and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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

WindowKey = tuple[str, tuple[str, ...]]  # (table, dims values)


@dataclass(frozen=True, slots=True)
class Window:
    counts: dict[str, int]
    version: int = 0  # emissions so far
    dirty: bool = True  # changed since the last emission


def add(window: Window | None, counter: str, n: int = 1) -> Window:
    counts = {} if window is None else window.counts
    new_counts = counts | {counter: counts.get(counter, 0) + n}
    return Window(new_counts) if window is None else replace(window, counts=new_counts, dirty=True)


def emitted(window: Window) -> Window:
    return replace(window, version=window.version + 1, dirty=False)


def render(start: int, key: WindowKey, window: Window) -> Row:
    """The full row of an emitted window (call after ``emitted``)."""
    table, dims = key
    row: dict[str, Any] = {"window_start": start, **dict(zip(DIMS[table], dims, strict=True))}
    row |= {name: window.counts.get(name, 0) for name in COUNTERS[table]}
    row["version"] = window.version
    return table, row
