"""The state table on the real engine: what a runtime checkpoints, a new owner loads back --
one partition at a time (``load``) or many in one read (``load_many``, a worker's rebalance)."""

from __future__ import annotations

import time
from typing import Any

import orjson
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


def _failed(call_id: str, at: int) -> Any:
    body = {"callId": call_id, "nodeId": "n1", "status": "FAILED", "info": "Busy here"}
    return make(resolve("CallStatusEvent"), body, at, f"{call_id}-FAILED")


def _minute_rows(client: Any, db: str) -> list[tuple[str, int]]:
    """(key, version) of every window-minute row written, oldest first."""
    rows = client.query(
        f"SELECT key, version FROM {db}.entity_state WHERE family = '#windows' "
        "ORDER BY version, key"
    ).result_rows
    return [(key, int(version)) for key, version in rows]


def test_only_the_window_minutes_that_changed_are_written_and_load_back(
    ch_client: Any, db: str
) -> None:
    """A checkpoint writes the minutes of window counters changed since the last one (live
    traffic: the current minute), not every minute the partition holds; the stored meta
    loads back with every held window, in a new process (a new store) too."""
    base = T0 - T0 % 60_000 - 10 * 60_000
    runtime = PartitionRuntime(ProcessorConfig(), persistent=True)
    store = StateStore(ch_client, db, "embedded", lambda: int(time.time() * 1000))
    writer = ClickHouseWriter(ch_client, db, now_ms=lambda: 0, sleep=lambda _: None)

    def checkpoint() -> None:
        runtime.flush()
        writer.add_state(store.rows_for(runtime.begin_checkpoint(), lambda _key, s: is_open(s)))
        writer.flush()

    def minutes_of(rows: list[tuple[str, int]], version: int) -> list[str]:
        return [key for key, v in rows if v == version]

    for minute in range(3):  # three minutes of FAILED calls, then one checkpoint
        runtime.feed([_failed(f"m{minute}-{i}", base + minute * 60_000 + i) for i in range(3)])
    checkpoint()
    first = _minute_rows(ch_client, db)
    assert [key for key, _ in first] == [f"embedded@{base + m * 60_000}" for m in range(3)]
    runtime.feed([_failed("late-minute-3", base + 3 * 60_000 + 5)])  # only minute 3 changes
    checkpoint()
    second = _minute_rows(ch_client, db)
    newest = max(v for _, v in second)
    assert minutes_of(second, newest) == [f"embedded@{base + 3 * 60_000}"]
    checkpoint()  # nothing changed: the partition row only
    assert _minute_rows(ch_client, db) == second

    want = runtime.meta()["windows"]
    for loader in (store, StateStore(ch_client, db, "embedded", lambda: 0)):
        meta, _ = loader.load()
        assert meta is not None and meta["clock"] == runtime.clock
        got = meta["windows"]
        assert got["late_dropped"] == want["late_dropped"]
        assert sorted(map(repr, got["windows"])) == sorted(map(repr, want["windows"]))
        assert len(got["windows"]) == 4  # one status_counts window a minute
    again = PartitionRuntime(ProcessorConfig(), persistent=True)
    again.load_meta(meta)
    assert again.windows.buckets == runtime.windows.buckets


def test_a_partition_row_with_its_windows_inline_still_loads(ch_client: Any, db: str) -> None:
    """Partition rows written before the minutes were stored apart keep their windows in the
    row: they load as they are, and the next checkpoint stores every minute apart."""
    runtime = PartitionRuntime(ProcessorConfig(), persistent=True)
    runtime.feed([_failed(f"c{i}", T0 + i * 60_000) for i in range(2)])
    runtime.flush()
    meta = runtime.meta()
    writer = ClickHouseWriter(ch_client, db, now_ms=lambda: 0, sleep=lambda _: None)
    old = {"family": "", "key": "embedded", "part": "embedded", "open": 1,
           "last_event_at": T0, "written_at": T0, "state": orjson.dumps(meta).decode(),
           "version": 1}  # fmt: skip
    writer.add_state([old])
    writer.flush()
    store = StateStore(ch_client, db, "embedded", lambda: int(time.time() * 1000))
    loaded, _ = store.load()
    assert loaded == orjson.loads(orjson.dumps(meta))
    writer.add_state(store.rows_for(runtime.begin_checkpoint(), lambda _key, s: is_open(s)))
    writer.flush()
    assert len(_minute_rows(ch_client, db)) == 2
    again, _ = StateStore(ch_client, db, "embedded", lambda: 0).load()
    assert again is not None
    assert sorted(map(repr, again["windows"]["windows"])) == sorted(
        map(repr, orjson.loads(orjson.dumps(meta))["windows"]["windows"])
    )


def test_a_missing_minute_of_windows_is_reported_and_the_rest_loads(
    ch_client: Any, db: str, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = PartitionRuntime(ProcessorConfig(), persistent=True)
    base = T0 - T0 % 60_000 - 5 * 60_000
    runtime.feed([_failed(f"c{i}", base + i * 60_000) for i in range(3)])
    runtime.flush()
    store = StateStore(ch_client, db, "embedded", lambda: int(time.time() * 1000))
    writer = ClickHouseWriter(ch_client, db, now_ms=lambda: 0, sleep=lambda _: None)
    writer.add_state(store.rows_for(runtime.begin_checkpoint(), lambda _key, s: is_open(s)))
    writer.flush()
    gone = f"embedded@{base + 60_000}"
    ch_client.command(
        f"ALTER TABLE {db}.entity_state DELETE WHERE key = {{k:String}}",
        parameters={"k": gone},
        settings={"mutations_sync": 1},
    )
    with caplog.at_level("WARNING", logger="sinks.state_store"):
        meta, _ = StateStore(ch_client, db, "embedded", lambda: 0).load()
    assert meta is not None
    assert sorted(w[0] for w in meta["windows"]["windows"]) == [base, base + 120_000]
    assert f"the window counters of 1 stored minute(s) are missing ({gone})" in caplog.text
