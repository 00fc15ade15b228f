"""Pipeline: status counting, heap timers (only due entities), eviction, snapshot/restore."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest
from helpers.envs import APP, NODE, Envs, calls, checked, connections, messages, of, streams

from events.envelope import Envelope
from events.tables import Row
from processors.clock import Timers
from processors.config import ProcessorConfig
from processors.pipeline import Pipeline

CFG = ProcessorConfig()
SETUP = CFG.call_setup_timeout_ms


def run(pipeline: Pipeline, events: list[Envelope], advance: bool = False) -> list[Row]:
    rows: list[Row] = []
    for env in events:
        rows += pipeline.process(env)
        if advance:
            rows += pipeline.advance(env["received_at"])
    return checked(rows)


def status_totals(rows: list[Row]) -> Counter[tuple[str, str]]:
    """Counts per (family, status), keeping only the latest version of each window."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in of(rows, "status_counts"):
        key = (row["window_start"], row["family"], row["status"], row["app_key"], row["node_id"])
        if key not in latest or row["version"] > latest[key]["version"]:
            latest[key] = row
    totals: Counter[tuple[str, str]] = Counter()
    for row in latest.values():
        totals[(row["family"], row["status"])] += row["count"]
    return totals


# ---- Timers (clock.py): the heap hands out exactly the due keys ---------------------------


def test_timers_pop_only_due_keys_without_scanning() -> None:
    timers, asked = Timers(), []
    dues = {("call", f"c{i}"): i * 10 for i in range(1000)}
    for key, due in dues.items():
        timers.schedule(key, due)

    def current(key: tuple[str, str]) -> int | None:
        asked.append(key)
        return dues[key]

    popped = []
    for key in timers.pop_due(25, current):
        popped.append(key)
        dues[key] += 10_000
        timers.schedule(key, dues[key])
    assert popped == [("call", "c0"), ("call", "c1"), ("call", "c2")]
    assert asked == popped  # the other 997 entities were not looked at
    assert len(timers) == 1000


def test_timers_reorder_moved_and_dropped_keys() -> None:
    timers = Timers()
    dues: dict[tuple[str, str], int | None] = {("s", "later"): 300, ("s", "gone"): None}
    timers.schedule(("s", "later"), 100)  # its due moved later without a push
    timers.schedule(("s", "gone"), 100)
    timers.schedule(("s", "earlier"), 500)
    timers.schedule(("s", "earlier"), 200)  # moved earlier: pushed again
    dues[("s", "earlier")] = 200
    timers.schedule(("s", "none"), None)
    popped = [k for k in timers.pop_due(1000, dues.get) if dues.__setitem__(k, None) is None]
    assert popped == [("s", "earlier"), ("s", "later")]
    assert len(timers) == 0


# ---- status_counts / message_rates ---------------------------------------------------------


def test_status_counted_once_per_entity_despite_duplicates_and_retries() -> None:
    c = calls()
    ring = c("CallStatusEvent", 1000, "RING")
    events = [ring, ring, c("CallStatusEvent", 1500, "RING"), c("CallStatusEvent", 2000, "FINISH")]
    other = calls("call-2")("CallStatusEvent", 1000, "RING")
    pipeline = Pipeline(CFG)
    rows = run(pipeline, [*events, other]) + pipeline.flush()
    assert status_totals(rows) == {("call", "RING"): 2, ("call", "FINISH"): 1}


def test_status_is_attributed_to_the_first_processed_event_minute() -> None:
    c = calls()
    pipeline = Pipeline(CFG)
    rows = run(pipeline, [c("CallStatusEvent", 61_000, "RING"), c("CallStatusEvent", 1000, "RING")])
    (row,) = of(rows + pipeline.flush(), "status_counts")
    assert (row["window_start"], row["count"], row["app_key"], row["node_id"]) == (
        60_000,
        1,
        APP,
        NODE,
    )


def test_keepalive_status_counts_once_per_stream() -> None:
    s = streams()
    events = [s("StreamKeepAliveEvent", t, "PUBLISHING") for t in (10_000, 20_000, 30_000)]
    pipeline = Pipeline(CFG)
    rows = run(pipeline, [s("StreamStatusEvent", 5000, "PUBLISHING"), *events])
    assert status_totals(rows + pipeline.flush()) == {("stream", "PUBLISHING"): 1}


def test_message_rates_count_each_mark_once() -> None:
    m = messages()
    sent = m("sendMessage", 1000)
    events = [
        sent,
        sent,
        m("MessageStatusEvent", 2000, "ACCEPTED"),
        m("MessageStatusEvent", 3000, "ACCEPTED"),
    ]
    events.append(messages("msg-2")("MessageStatusEvent", 4000, "IMDN_ERROR"))
    pipeline = Pipeline(CFG)
    rows = of(run(pipeline, events) + pipeline.flush(), "message_rates")
    assert [(r["sent"], r["accepted"], r["imdn_failed"], r["received"]) for r in rows] == [
        (1, 1, 1, 0)
    ]


def test_side_families_count_with_idle_eviction() -> None:
    d = Envs("d", operationId="op-1")
    idle = CFG.message_idle_timeout_ms
    pipeline = Pipeline(CFG)
    rows = run(
        pipeline, [d("DataStatusEvent", 1000, "ACCEPTED"), d("DataStatusEvent", 2000, "ACCEPTED")]
    )
    rows += run(pipeline, [d("sendData", 2500), Envs("x")("ErrorEvent", 2600, info="boom")])
    assert pipeline.open_entities() == 0
    rows += pipeline.advance(2500 + idle)
    rows += run(pipeline, [d("DataStatusEvent", 2500 + idle, "ACCEPTED")])
    totals = status_totals(rows + pipeline.flush())
    assert totals == {("data", "ACCEPTED"): 2}  # once, then again after the key was evicted


def test_scope_falls_back_to_the_entity() -> None:
    c = calls()
    pipeline = Pipeline(CFG)
    orphan = calls(appKey=None, nodeId=None)("CallStatusEvent", 2000, "FINISH")
    rows = run(pipeline, [c("CallStatusEvent", 1000, "RING"), orphan]) + pipeline.flush()
    assert {(r["app_key"], r["node_id"]) for r in of(rows, "status_counts")} == {(APP, NODE)}


def test_late_hits_are_dropped_and_counted() -> None:
    cfg = ProcessorConfig(window_retention_ms=120_000)
    pipeline = Pipeline(cfg)
    run(pipeline, [calls()("CallStatusEvent", 500_000, "RING")])
    assert pipeline.advance(500_000) == []
    run(pipeline, [calls("old")("CallStatusEvent", 1000, "RING")])
    assert pipeline.late_dropped == 1
    assert status_totals(pipeline.flush()) == {("call", "RING"): 1}


# ---- timers through the pipeline ------------------------------------------------------------


def test_advance_fires_exactly_the_due_timeouts() -> None:
    pipeline = Pipeline(CFG)
    run(pipeline, [calls(f"c{i}")("CallStatusEvent", i * 1000, "RING") for i in range(3)])
    assert pipeline.process(calls("late")("CallStatusEvent", 10**9, "RING")) != []
    assert pipeline.open_entities() == 4  # process never fires timeouts
    assert of(pipeline.advance(SETUP - 1), "calls") == []
    rows = checked(pipeline.advance(1000 + SETUP))
    assert [(r["call_id"], r["closed_by"]) for r in of(rows, "calls")] == [
        ("c0", "timeout"),
        ("c1", "timeout"),
    ]
    assert pipeline.open_entities() == 2


def test_closed_state_is_evicted_after_retention_then_restarts_at_version_1() -> None:
    c = calls()
    ring, finish = c("CallStatusEvent", 1000, "RING"), c("CallStatusEvent", 2000, "FINISH")
    pipeline = Pipeline(CFG)
    assert [r["version"] for r in of(run(pipeline, [ring, finish]), "calls")] == [1, 2]
    assert of(pipeline.advance(2000 + CFG.closed_retention_ms - 1), "calls") == []
    assert of(run(pipeline, [finish]), "calls") == []  # duplicate absorbed while retained
    pipeline.advance(2000 + CFG.closed_retention_ms)
    (row,) = of(run(pipeline, [finish]), "calls")
    assert (row["version"], row["created_at"]) == (1, 2000)


def test_timeout_then_eviction_in_one_advance() -> None:
    pipeline = Pipeline(CFG)
    run(pipeline, [calls()("CallStatusEvent", 1000, "ESTABLISHED")])
    rows = pipeline.advance(10**12)
    assert [r["closed_by"] for r in of(rows, "calls")] == ["timeout"]
    snapshot = orjson.loads(pipeline.snapshot())
    assert (snapshot["entities"], snapshot["windows"]["windows"]) == ([], [])
    assert pipeline.open_entities() == 0


def test_flush_emits_windows_only() -> None:
    pipeline = Pipeline(CFG)
    run(pipeline, [calls()("CallStatusEvent", 1000, "RING")])
    assert {t for t, _ in pipeline.flush()} == {"status_counts"}
    assert pipeline.flush() == []
    assert pipeline.clock_ms == 1000


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        Pipeline(ProcessorConfig(window_ms=0))


# ---- snapshot / restore -------------------------------------------------------------------


def scenario(seed: int) -> list[Envelope]:
    """A mixed, partly reordered and duplicated stream of envelopes over ~40 minutes."""
    rnd = random.Random(seed)
    events: list[Envelope] = []
    for i in range(6):
        t = rnd.randrange(0, 600_000)
        c = calls(f"call-{i}")
        events += [c("CallStatusEvent", t, "RING"), c("CallStatusEvent", t + 2000, "ESTABLISHED")]
        if i % 2:
            events.append(c("CallStatusEvent", t + 90_000, "FINISH"))
        s = streams(f"ms-{i}")
        events += [
            s("StreamKeepAliveEvent", t + k * rnd.choice((10_000, 20_000)), "PUBLISHING")
            for k in range(6)
        ]
        if i % 3 == 0:
            events.append(s("StreamStatusEvent", t + 200_000, "UNPUBLISHED"))
        m = messages(f"msg-{i}")
        events += [m("sendMessage", t), m("MessageStatusEvent", t + 500, "ACCEPTED")]
        w = connections(f"sess-{i}")
        events += [w("connect", t), w("ConnectionStatusEvent", t + 100, "ESTABLISHED")]
    events.sort(key=lambda e: e["received_at"] + rnd.randrange(0, 20_000))  # local disorder
    events += rnd.sample(events, 10)  # duplicates
    events.append(calls("end")("CallStatusEvent", 2_400_000, "RING"))
    return events


@pytest.mark.parametrize("cut", [0, 7, 40, 95])  # percent of the input
def test_snapshot_restore_continues_identically(cut: int) -> None:
    events = scenario(cut)
    cut = cut * len(events) // 100
    whole = Pipeline(CFG)
    before = run(whole, events[:cut], advance=True)
    after_whole = run(whole, events[cut:], advance=True) + whole.advance(10**10) + whole.flush()

    first = Pipeline(CFG)
    assert run(first, events[:cut], advance=True) == before
    data = first.snapshot()
    resumed = Pipeline.restore(CFG, data)
    assert resumed.snapshot() == data
    assert resumed.open_entities() == first.open_entities()
    after_resumed = (
        run(resumed, events[cut:], advance=True) + resumed.advance(10**10) + resumed.flush()
    )
    assert after_resumed == after_whole
    assert resumed.snapshot() == whole.snapshot()
    assert len(before) + len(after_whole) > 100


def test_snapshot_is_plain_json() -> None:
    pipeline = Pipeline(CFG)
    run(pipeline, scenario(3), advance=True)
    obj = orjson.loads(pipeline.snapshot())
    assert obj["v"] == 1 and obj["entities"] and obj["windows"]["windows"]
    with pytest.raises(ValueError, match="snapshot version"):
        Pipeline.restore(CFG, orjson.dumps({**obj, "v": 99}))
