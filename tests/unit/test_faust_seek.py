"""The guard against Faust's recovery race (processors/faust_seek.py), without a broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from faust.types import TP

from processors.faust_seek import guard_seek, later

P0, P1 = TP("t", 0), TP("t", 1)


def test_newest_committed_keeps_a_later_own_commit() -> None:
    fetched = {"a": 1, "b": 40, "c": None, "d": 7}
    ours = {"a": 15, "b": 12, "c": 3}
    assert later(fetched, ours) == {"a": 15, "b": 40, "c": 3, "d": 7}


def test_newest_committed_without_own_commits_is_the_fetched_mapping() -> None:
    assert later({"a": 5, "b": None}, {}) == {"a": 5, "b": None}


class _Consumer:
    """Faust's perform_seek, verbatim in what it does with the fetched offsets, plus the
    flow switch; records the flow state while the committed offsets are fetched."""

    def __init__(self, broker: dict[TP, int | None]) -> None:
        self.broker = broker
        self.flow_active = True
        self.flow_during_seek: list[bool] = []
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._read_offset: dict[TP, int | None] = defaultdict(lambda: None)

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    async def seek_to_committed(self) -> dict[TP, int | None]:
        fetched = dict(self.broker)
        self.flow_during_seek.append(self.flow_active)
        await asyncio.sleep(0)  # a commit of acked records lands while the requests run
        self._committed_offset[P0] = 15
        return fetched

    async def perform_seek(self) -> None:
        offsets: Any = await self.seek_to_committed()
        self._read_offset.update(
            {tp: o if o is not None and o >= 0 else None for tp, o in offsets.items()}
        )
        self._committed_offset.update({tp: o or None for tp, o in offsets.items() if o is not None})


def test_a_commit_during_the_seek_is_not_overwritten() -> None:
    bare = _Consumer({P0: 1, P1: 4})
    asyncio.run(bare.perform_seek())
    assert bare._committed_offset[P0] == 1  # the race: our commit of 15 is forgotten
    assert bare.flow_during_seek == [True]  # and records keep coming meanwhile

    guarded = _Consumer({P0: 1, P1: 4})
    guard_seek(guarded)
    guard_seek(guarded)  # idempotent
    asyncio.run(guarded.perform_seek())
    assert guarded._committed_offset == {P0: 15, P1: 4}
    assert guarded._read_offset == {P0: 15, P1: 4}  # re-read from there
    assert guarded.flow_during_seek == [False]
    assert guarded.flow_active


def test_a_rebalance_that_stops_the_flow_during_the_seek_keeps_it_stopped() -> None:
    consumer = _Consumer({P0: 1})
    guard_seek(consumer)
    fetch = consumer.seek_to_committed

    async def rebalancing() -> dict[TP, int | None]:
        consumer.stop_flow()  # what Faust does when partitions are revoked
        return await fetch()

    consumer.seek_to_committed = rebalancing  # type: ignore[method-assign]
    asyncio.run(consumer.perform_seek())
    assert not consumer.flow_active  # Faust resumes it after the new assignment


def test_a_seek_with_the_flow_already_stopped_leaves_it_stopped() -> None:
    consumer = _Consumer({P0: 1})
    consumer.flow_active = False  # a rebalance stopped it; Faust resumes it itself
    guard_seek(consumer)
    asyncio.run(consumer.perform_seek())
    assert not consumer.flow_active


def test_lagging_counts_records_committed_by_a_previous_owner() -> None:
    from processors.faust_worker import lagging

    ends = {"a": 10, "b": 10, "c": 10, "d": 0}
    done = {"a": 9, "b": 4}  # a: all handled here; b: up to 4; c: nothing since adopted
    committed = {"b": 3, "c": 10}  # c: its previous owner committed everything
    assert lagging(ends, done, committed) == {"b": (5, 10)}
    assert lagging(ends, done, {}) == {"b": (5, 10), "c": (0, 10)}


def test_the_pinned_faust_still_seeks_the_way_the_guard_assumes() -> None:
    """The guard wraps Faust internals; a Faust upgrade that changes them must fail here."""
    import inspect

    from faust.transport.consumer import Consumer

    source = inspect.getsource(Consumer.perform_seek)
    assert "await self.seek_to_committed()" in source
    assert "self._committed_offset.update(" in source
    assert "read_offset.update(" in source
