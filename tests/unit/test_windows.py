"""Windows: emission after lateness, full-count re-emission, retention, late drops, flush."""

from __future__ import annotations

import orjson
import pytest
from helpers.envs import checked

from processors import windows as w
from processors.clock import window_start
from processors.config import ProcessorConfig
from processors.window_store import WindowStore

CFG = ProcessorConfig(window_ms=60_000, window_lateness_ms=10_000, window_retention_ms=120_000)
DIMS = ("call", "RING", "app", "node")
END = 60_000  # end of the first window [0, 60_000)


def store_with(*times: int) -> WindowStore:
    store = WindowStore(CFG)
    for t in times:
        assert store.add("status_counts", t, DIMS, "count")
    return store


def counts(rows: list[tuple[str, dict[str, object]]]) -> list[tuple[object, object, object]]:
    return [(r["window_start"], r["count"], r["version"]) for _, r in checked(rows)]


@pytest.mark.parametrize(
    ("t", "start"), [(0, 0), (59_999, 0), (60_000, 60_000), (1_700_000_000_123, 1_699_999_980_000)]
)
def test_window_start(t: int, start: int) -> None:
    assert window_start(t, 60_000) == start


@pytest.mark.parametrize(
    ("now", "emitted"),
    [(END, []), (END + 10_000, []), (END + 10_001, [(0, 2, 1)])],
    ids=["at end", "at end + lateness", "past lateness"],
)
def test_emitted_only_past_lateness(now: int, emitted: list[tuple[int, int, int]]) -> None:
    store = store_with(1000, 2000)
    assert counts(store.advance(now)) == emitted


def test_late_hit_reemits_full_counts_with_next_version() -> None:
    store = store_with(1000, 2000, 61_000)
    assert counts(store.advance(END + 10_001)) == [(0, 2, 1)]
    assert store.advance(END + 20_000) == []  # unchanged: not re-emitted
    assert store.add("status_counts", 3000, DIMS, "count")
    assert counts(store.advance(END + 20_000)) == [(0, 3, 2)]
    assert counts(store.advance(2 * END + 10_001)) == [(60_000, 1, 1)]


def test_retention_then_late_drop() -> None:
    store = store_with(1000)
    store.advance(END + 120_000)
    assert len(store) == 1  # kept until clock > end + retention
    store.advance(END + 120_001)
    assert len(store) == 0
    assert not store.add("status_counts", 1500, DIMS, "count")
    assert store.late_dropped == 1
    assert store.advance(END + 200_000) == []
    assert store.add("status_counts", END + 200_000, DIMS, "count")  # a current window is fine


def test_first_hit_of_an_old_but_retained_window_is_emitted_at_next_advance() -> None:
    store = WindowStore(CFG)
    store.advance(END + 50_000)
    assert store.add("status_counts", 5000, DIMS, "count")
    assert counts(store.advance(END + 50_000)) == [(0, 1, 1)]


def test_flush_emits_changed_windows_once() -> None:
    store = store_with(1000, 61_000)
    assert counts(store.advance(END + 10_001)) == [(0, 1, 1)]
    assert counts(store.flush()) == [(60_000, 1, 1)]
    assert store.flush() == []


def test_message_rates_row_carries_every_counter() -> None:
    store = WindowStore(CFG)
    store.add("message_rates", 1000, ("app", "node"), "sent")
    store.add("message_rates", 1001, ("app", "node"), "sent")
    store.add("message_rates", 1002, ("app", "node"), "imdn_failed")
    (row,) = checked(store.flush())
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
            "version": 1,
        },
    )


def test_windows_are_separate_per_dims() -> None:
    store = store_with(1000)
    store.add("status_counts", 1000, ("call", "RING", "app", "other-node"), "count")
    rows = checked(store.flush())
    assert sorted(r["node_id"] for _, r in rows) == ["node", "other-node"]


def test_pure_window_add_and_emit() -> None:
    win = w.add(w.add(None, "count"), "count", 2)
    assert (win.counts, win.version, win.dirty) == ({"count": 3}, 0, True)
    win = w.emitted(win)
    assert (win.version, win.dirty) == (1, False)
    assert w.add(win, "count").dirty


def test_round_trip_keeps_versions_and_dirty_flags() -> None:
    store = store_with(1000, 61_000)
    store.advance(END + 10_001)
    store.add("status_counts", 2000, DIMS, "count")
    restored = WindowStore.from_dict(CFG, orjson.loads(orjson.dumps(store.to_dict())))
    assert restored.to_dict() == store.to_dict()
    assert counts(restored.flush()) == counts(store.flush()) == [(0, 2, 2), (60_000, 1, 1)]
