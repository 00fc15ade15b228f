"""The state table on the real engine: what a runtime checkpoints, a new owner loads back --
one partition at a time (``load``) or many in one read (``load_many``, a worker's rebalance)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from events.catalog import resolve
from events.envelope import make
from processors.config import ProcessorConfig
from processors.entity import is_open
from processors.runtime import PartitionRuntime
from processors.state_codec import same
from sinks.migrations import migrate
from sinks.state_store import StateStore, load_many
from sinks.writer import ClickHouseWriter

pytestmark = pytest.mark.integration

T0 = int(time.time() * 1000) - 60_000  # recent: the table's TTL keeps the rows


def _call(call_id: str, status: str, at: int) -> Any:
    body = {"callId": call_id, "nodeId": "n1", "status": status}
    return make(resolve("CallStatusEvent"), body, at, f"{call_id}-{status}")


def _checkpointed(client: Any, db: str, part: str, calls: list[tuple[str, str]]) -> Any:
    """A runtime fed ``calls`` whose state rows (and partition row) are written to ``db``."""
    runtime = PartitionRuntime(ProcessorConfig(), persistent=True)
    runtime.feed([_call(cid, status, T0 + i) for i, (cid, status) in enumerate(calls)])
    runtime.flush()
    store = StateStore(client, db, part, lambda: int(time.time() * 1000))
    writer = ClickHouseWriter(client, db, now_ms=lambda: 0, sleep=lambda _: None)
    writer.add_state(store.rows_for(runtime.begin_checkpoint(), lambda _key, s: is_open(s)))
    writer.flush()
    return runtime


@pytest.fixture
def db(ch_client: Any, fresh_db: str) -> str:
    migrate(ch_client, fresh_db)
    return fresh_db


def test_many_partitions_load_in_one_read_like_one_at_a_time(ch_client: Any, db: str) -> None:
    a = _checkpointed(ch_client, db, "wcs.call/0", [("c1", "RING"), ("c2", "FINISH")])
    b = _checkpointed(ch_client, db, "wcs.call/1", [("c3", "TRYING"), ("c4", "RING")])
    parts = ["wcs.call/0", "wcs.call/1", "wcs.call/2"]  # the last one has nothing stored
    stores = [StateStore(ch_client, db, p, lambda: 0) for p in parts]
    loaded = load_many(stores)
    assert set(loaded) == set(parts)
    for part, runtime in (("wcs.call/0", a), ("wcs.call/1", b)):
        meta, states = loaded[part]
        one_meta, one_states = StateStore(ch_client, db, part, lambda: 0).load()
        assert meta is not None and meta["clock"] == runtime.clock == one_meta["clock"]
        got = dict(states)
        assert set(got) == set(dict(one_states))
        for key, state in got.items():  # open entities only, equal to what the runtime holds
            assert same(state, runtime.states[key])
    assert sorted(key for key, _ in loaded["wcs.call/0"][1]) == [("call", "c1")]  # c2 ended
    assert sorted(key for key, _ in loaded["wcs.call/1"][1]) == [("call", "c3"), ("call", "c4")]
    assert loaded["wcs.call/2"] == (None, [])
    # every stored key (closed ones too) is in its own partition's key filter only
    assert stores[0].keys.might_contain("call", "c2")
    assert not stores[2].keys.might_contain("call", "c2")
    assert load_many([]) == {}
