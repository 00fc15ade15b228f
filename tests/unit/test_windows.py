"""Windows: emission after lateness, full-count re-emission, retention, late drops, flush."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from helpers.envs import checked

from events.tables import Row
from processors.clock import window_start
from processors.windows import WindowCounts

DIMS = ("call", "RING", "app", "node")
END = 60_000  # end of the first window [0, 60_000)
LATENESS, RETENTION = 10_000, 120_000


def counts_with(*times: int) -> WindowCounts:
    windows = WindowCounts(60_000, LATENESS, RETENTION)
    for t in times:
        assert windows.add("status_counts", t, DIMS, "count", None)
    return windows


def summary(rows: list[Row]) -> list[tuple[Any, Any, Any]]:
    return [(r["window_start"], r["count"], r["version"]) for _, r in checked(rows)]


@pytest.mark.parametrize(
    ("t", "start"), [(0, 0), (59_999, 0), (60_000, 60_000), (1_700_000_000_123, 1_699_999_980_000)]
)
def test_window_start(t: int, start: int) -> None:
    assert window_start(t, 60_000) == start


@pytest.mark.parametrize(
    ("now", "emitted"),
    [(END, []), (END + LATENESS, []), (END + LATENESS + 1, [(0, 2, 2)])],
    ids=["at end", "at end + lateness", "past lateness"],
)
def test_emitted_only_past_lateness(now: int, emitted: list[tuple[int, int, int]]) -> None:
    windows = counts_with(1000, 2000)
    assert windows.next_due() == END + LATENESS + 1
    assert summary(windows.due(now)) == emitted


def test_late_hit_reemits_full_counts_with_a_higher_version() -> None:
    windows = counts_with(1000, 2000, 61_000)
    assert summary(windows.due(END + LATENESS + 1)) == [(0, 2, 2)]
    assert windows.due(END + 20_000) == []  # unchanged: not re-emitted
    assert windows.add("status_counts", 3000, DIMS, "count", END + 20_000)
    assert summary(windows.due(END + 20_000)) == [(0, 3, 3)]
    assert summary(windows.due(2 * END + LATENESS + 1)) == [(60_000, 1, 1)]


def test_version_is_the_sum_of_the_counters() -> None:
    """Re-counting the same input gives the same row; more hits, a higher version."""
    windows = WindowCounts(60_000, LATENESS, RETENTION)
    for counter in ("sent", "sent", "accepted", "imdn_failed"):
        windows.add("message_rates", 1000, ("app", "node"), counter, None)
    (first,) = windows.flush()
    windows.add("message_rates", 1001, ("app", "node"), "received", None)
    (second,) = windows.flush()
    assert (first[1]["version"], second[1]["version"]) == (4, 5)


def test_retention_then_late_drop() -> None:
    windows = counts_with(1000)
    windows.due(END + RETENTION)
    assert len(windows) == 1  # kept until clock > end + retention
    windows.due(END + RETENTION + 1)
    assert len(windows) == 0
    assert windows.next_due() is None
    assert not windows.add("status_counts", 1500, DIMS, "count", END + RETENTION + 1)
    assert windows.late_dropped == 1
    assert windows.due(END + 200_000) == []
    assert windows.add("status_counts", END + 200_000, DIMS, "count", END + 200_000)


@pytest.mark.parametrize(
    ("clock", "kept"),
    [(None, True), (END + RETENTION, True), (END + RETENTION + 1, False)],
    ids=["no clock", "at retention end", "past retention"],
)
def test_hit_for_a_window_past_retention_is_dropped(clock: int | None, kept: bool) -> None:
    windows = WindowCounts(60_000, LATENESS, RETENTION)
    assert windows.add("status_counts", 1000, DIMS, "count", clock) is kept
    assert (len(windows), windows.late_dropped) == ((1, 0) if kept else (0, 1))


def test_first_hit_of_an_old_but_retained_window_is_emitted_when_due() -> None:
    windows = WindowCounts(60_000, LATENESS, RETENTION)
    assert windows.add("status_counts", 5000, DIMS, "count", END + 50_000)
    assert windows.next_due() == END + LATENESS + 1  # already passed: the next tick emits it
    assert summary(windows.due(END + 50_000)) == [(0, 1, 1)]


def test_flush_emits_changed_windows_once() -> None:
    windows = counts_with(1000, 61_000)
    assert summary(windows.due(END + LATENESS + 1)) == [(0, 1, 1)]
    assert summary(windows.flush()) == [(60_000, 1, 1)]
    assert windows.flush() == []


def test_message_rates_row_carries_every_counter() -> None:
    windows = WindowCounts(60_000, LATENESS, RETENTION)
    windows.add("message_rates", 1000, ("app", "node"), "sent", None)
    windows.add("message_rates", 1001, ("app", "node"), "sent", None)
    windows.add("message_rates", 1002, ("app", "node"), "imdn_failed", None)
    (row,) = checked(windows.flush())
    assert row == (
        "message_rates",
        {
            "window_start": 0,
            "app_key": "app",
            "node_id": "node",
            "sent": 2,
            "received": 0,
            "accepted": 0,
            "failed": 0,
            "imdn_delivered": 0,
            "imdn_failed": 1,
            "version": 3,
        },
    )


def test_windows_are_separate_per_dims() -> None:
    windows = counts_with(1000)
    windows.add("status_counts", 1000, ("call", "RING", "app", "other-node"), "count", None)
    rows = checked(windows.flush())
    assert sorted(r["node_id"] for _, r in rows) == ["node", "other-node"]


def test_round_trip_keeps_counts_and_dirty_flags() -> None:
    windows = counts_with(1000, 61_000)
    windows.due(END + LATENESS + 1)
    windows.add("status_counts", 2000, DIMS, "count", END + LATENESS + 1)
    data = orjson.loads(orjson.dumps(windows.to_json()))
    restored = WindowCounts(60_000, LATENESS, RETENTION)
    restored.load(data)
    assert restored.to_json() == windows.to_json()
    assert restored.next_due() == windows.next_due()
    assert summary(restored.flush()) == summary(windows.flush()) == [(0, 2, 2), (60_000, 1, 1)]
    assert restored.flush() == []
