"""A partition's windows stored a minute per row (``sinks.state_store.split_meta``): pure."""

from __future__ import annotations

from typing import Any

import orjson

from sinks.state_store import join_meta, split_meta

M = 60_000


def _meta(windows: list[list[Any]]) -> dict[str, Any]:
    return {"clock": 5 * M, "windows": {"late_dropped": 2, "windows": windows}, "stage": None}


WINDOWS = [
    [M, "status_counts", ["call", "FAILED", "app", "n1"], [3], False],
    [0, "message_rates", ["app", "n1"], [1, 0, 0, 0, 0, 0], True],
    [M, "message_rates", ["app", "n1"], [2, 1, 0, 0, 0, 0], False],
    [0, "status_counts", ["call", "FAILED", "app", "n1"], [1], True],
]


def test_the_windows_are_split_by_minute() -> None:
    stored, minutes = split_meta(_meta(WINDOWS))
    assert stored == {"clock": 5 * M, "windows": {"late_dropped": 2, "minutes": [0, M]},
                      "stage": None}  # fmt: skip
    assert orjson.loads(minutes[0]) == [WINDOWS[1], WINDOWS[3]]
    assert orjson.loads(minutes[M]) == [WINDOWS[0], WINDOWS[2]]
    _, again = split_meta(_meta(WINDOWS))
    assert again == minutes  # the same counters give the same text


def test_join_gives_back_every_window() -> None:
    stored, minutes = split_meta(_meta(WINDOWS))
    joined = join_meta(orjson.loads(orjson.dumps(stored)), minutes)
    assert joined["clock"] == 5 * M and joined["windows"]["late_dropped"] == 2
    assert sorted(map(repr, joined["windows"]["windows"])) == sorted(map(repr, WINDOWS))


def test_a_meta_without_windows_has_no_minutes() -> None:
    stored, minutes = split_meta(_meta([]))
    assert minutes == {} and stored["windows"] == {"late_dropped": 2, "minutes": []}
    assert join_meta(stored, {})["windows"] == {"late_dropped": 2, "windows": []}


def test_a_meta_with_its_windows_inline_is_taken_as_it_is() -> None:
    meta = _meta(WINDOWS)
    assert join_meta(meta, {}) is meta
