"""PartitionRuntime: status counting, timers, eviction and the state store, late real ends,
key reuse, implausible times, invalid keys, checkpoints. Pure: the store is a dict."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import pytest
from helpers.envs import (
    APP,
    BASE,
    CFG,
    HOUR,
    MINUTE,
    NODE,
    Envs,
    calls,
    checked,
    connections,
    final,
    messages,
    of,
    streams,
)
from helpers.runtime import MemoryStateStore, feed

from events.envelope import Envelope
from events.tables import Row
from processors.clock import Timers
from processors.config import ProcessorConfig
from processors.runtime import EARLIEST_MS, PartitionRuntime

SETUP, IDLE = CFG.call_setup_timeout_ms, CFG.call_idle_timeout_ms
RETENTION, GAP = CFG.closed_retention_ms, CFG.key_reuse_gap_ms
CSE, SSE, MSE, WSE = (
    "CallStatusEvent",
    "StreamStatusEvent",
    "MessageStatusEvent",
    "ConnectionStatusEvent",
)


def run(runtime: PartitionRuntime, events: list[Envelope], **kw: Any) -> list[Row]:
    """Feed and flush; every envelope must be accepted."""
    assert feed(runtime, events, **kw) == []
    return checked(runtime.flush())


def status_totals(rows: list[Row]) -> Counter[tuple[str, str]]:
    """Counts per (family, status) of what FINAL keeps of the status_counts rows."""
    totals: Counter[tuple[str, str]] = Counter()
    for (table, *_), row in final(rows).items():
        if table == "status_counts":
            totals[(row["family"], row["status"])] += row["count"]
    return totals


def with_time(env: Envelope, received_at: Any) -> Envelope:
    return cast(Envelope, {**env, "received_at": received_at})


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
    popped = []
    for key in timers.pop_due(1000, dues.get):
        popped.append(key)
        dues[key] = None  # handled: no due any more
    assert popped == [("s", "earlier"), ("s", "later")]
    assert len(timers) == 0


# ---- status_counts / message_rates ---------------------------------------------------------


def test_status_counted_once_per_entity_despite_duplicates_and_retries() -> None:
    c = calls()
    ring = c(CSE, BASE + 1000, "RING")
    events = [ring, ring, c(CSE, BASE + 1500, "RING"), c(CSE, BASE + 2000, "FINISH")]
    other = calls("call-2")(CSE, BASE + 1000, "RING")
    rows = run(PartitionRuntime(CFG), [*events, other])
    assert status_totals(rows) == {("call", "RING"): 2, ("call", "FINISH"): 1}


def test_status_is_attributed_to_the_first_processed_event_minute() -> None:
    c = calls()
    rows = run(PartitionRuntime(CFG), [c(CSE, BASE + 61_000, "RING"), c(CSE, BASE + 1000, "RING")])
    (row,) = of(rows, "status_counts")
    assert (row["window_start"], row["count"], row["app_key"], row["node_id"]) == (
        BASE + MINUTE,
        1,
        APP,
        NODE,
    )


def test_keepalive_status_counts_once_per_stream() -> None:
    s = streams()
    beats = [s("StreamKeepAliveEvent", BASE + t, "PUBLISHING") for t in (10_000, 20_000, 30_000)]
    rows = run(PartitionRuntime(CFG), [s(SSE, BASE + 5000, "PUBLISHING"), *beats])
    assert status_totals(rows) == {("stream", "PUBLISHING"): 1}


def test_message_rates_count_each_mark_once() -> None:
    m = messages()
    sent = m("sendMessage", BASE + 1000)
    events = [sent, sent, m(MSE, BASE + 2000, "ACCEPTED"), m(MSE, BASE + 3000, "ACCEPTED")]
    events.append(messages("msg-2")(MSE, BASE + 4000, "IMDN_ERROR"))
    rows = of(run(PartitionRuntime(CFG), events), "message_rates")
    assert [(r["sent"], r["accepted"], r["imdn_failed"], r["received"]) for r in rows] == [
        (1, 1, 1, 0)
    ]


@pytest.mark.parametrize(
    ("events", "sent_at", "minutes"),
    [
        ([(MSE, 90_000, "ACCEPTED")], 90_000, {1: (1, 1)}),
        ([(MSE, 90_000, "ACCEPTED"), ("sendMessage", 30_000, None)], 30_000, {1: (1, 1)}),
        (
            [("sendMessage", 30_000, None), (MSE, 90_000, "ACCEPTED")],
            30_000,
            {0: (1, 0), 1: (0, 1)},
        ),
    ],
    ids=["accepted alone", "sendMessage arrives after", "in order"],
)
def test_accepted_without_send_message_is_a_sent_message(
    events: list[tuple[str, int, str | None]], sent_at: int, minutes: dict[int, tuple[int, int]]
) -> None:
    m = messages()
    rows = run(PartitionRuntime(CFG), [m(name, BASE + t, status) for name, t, status in events])
    row = of(rows, "messages")[-1]
    assert (row["direction"], row["sent_at"]) == ("outgoing", BASE + sent_at)
    rates = {
        (r["window_start"] - BASE) // MINUTE: (r["sent"], r["accepted"])
        for r in of(rows, "message_rates")
    }
    assert rates == minutes


def test_side_families_count_once_while_their_state_is_known() -> None:
    d = Envs("d", operationId="op-1")
    idle = CFG.message_idle_timeout_ms
    runtime = PartitionRuntime(CFG, persistent=True)
    rows = run(runtime, [d("DataStatusEvent", BASE + 1000, "ACCEPTED"), d("sendData", BASE + 2500)])
    rows += run(runtime, [Envs("x")("ErrorEvent", BASE + 2600, info="boom")])
    assert runtime.open_entities() == 0  # side states are not entities
    runtime.advance(BASE + 2500 + idle + RETENTION + 1)  # closed, then evicted
    assert ("data", "op-1") not in runtime.states
    rows += run(runtime, [d("DataStatusEvent", BASE + 2500 + idle + RETENTION + 2, "ACCEPTED")])
    assert status_totals(rows) == {("data", "ACCEPTED"): 1}
    retention = CFG.late_event_retention_ms
    late = BASE + 2500 + idle + retention + HOUR
    runtime.advance(late - 1)
    rows += run(runtime, [d("DataStatusEvent", late, "ACCEPTED")])
    # later than the retention: not counted again (a family without incarnation never gets a
    # second state for one key), kept in events only
    assert status_totals(rows) == {("data", "ACCEPTED"): 1}
    assert runtime.counts.skipped["too_late"] == 1


def test_side_state_changes_reach_the_checkpoint() -> None:
    """A later event without a new status still moves the side state's deadline: a restart
    must continue with that deadline, so the state is handed to the checkpoint."""
    d, key = Envs("d", operationId="op-1"), ("data", "op-1")
    runtime = PartitionRuntime(CFG, persistent=True)
    steps: list[tuple[Envelope, int | None]] = [
        (d("sendData", BASE), BASE),  # the first event makes it
        (d("DataStatusEvent", BASE + 1000, "ACCEPTED"), BASE + 1000),
        (d("DataStatusEvent", BASE + 9 * MINUTE, "ACCEPTED"), BASE + 9 * MINUTE),
        (d("DataStatusEvent", BASE + 5 * MINUTE, "FAILED"), BASE + 9 * MINUTE),
        (d("DataStatusEvent", BASE + 5 * MINUTE, "ACCEPTED"), None),  # older, nothing new
    ]
    for env, saved_last_event in steps:
        feed(runtime, [env])
        states = runtime.begin_checkpoint().states
        saved = None if key not in states else states[key].last_event_at
        assert saved == saved_last_event


def test_scope_falls_back_to_the_entity() -> None:
    c = calls()
    orphan = calls(appKey=None, nodeId=None)(CSE, BASE + 2000, "FINISH")
    rows = run(PartitionRuntime(CFG), [c(CSE, BASE + 1000, "RING"), orphan])
    assert {(r["app_key"], r["node_id"]) for r in of(rows, "status_counts")} == {(APP, NODE)}


def test_late_hits_are_dropped_and_counted() -> None:
    runtime = PartitionRuntime(ProcessorConfig(window_retention_ms=120_000))
    run(runtime, [calls()(CSE, BASE + 500_000, "RING")])
    rows = run(runtime, [calls("old")(CSE, BASE + 1000, "RING")])
    assert runtime.late_dropped == 1
    assert of(rows, "calls")  # the entity row is still made
    assert status_totals(rows) == {}


# ---- timers, eviction ---------------------------------------------------------------------


def test_timeouts_fire_as_the_clock_reaches_them() -> None:
    runtime = PartitionRuntime(CFG)
    run(runtime, [calls(f"c{i}")(CSE, BASE + i * 1000, "RING") for i in range(3)])
    runtime.advance(BASE + SETUP - 1)
    assert of(runtime.flush(), "calls") == []
    assert runtime.open_entities() == 3
    runtime.advance(BASE + 1000 + SETUP)
    rows = checked(runtime.flush())
    assert [(r["call_id"], r["closed_by"]) for r in of(rows, "calls")] == [
        ("c0", "timeout"),
        ("c1", "timeout"),
    ]
    assert runtime.open_entities() == 1
    # an event moving the clock fires them too, after being applied itself
    rows = run(runtime, [calls("c3")(CSE, BASE + 2000 + SETUP, "RING")])
    assert [(r["call_id"], r["closed_by"]) for r in of(rows, "calls")] == [
        ("c3", ""),
        ("c2", "timeout"),
    ]


def test_closed_state_is_evicted_after_retention_and_a_stray_duplicate_loses() -> None:
    """Without a state store an evicted key starts over; the partial row it makes for a
    duplicate has a lower version, so FINAL keeps the complete one."""
    c = calls()
    ring, finish = c(CSE, BASE + 1000, "RING"), c(CSE, BASE + 2000, "FINISH")
    runtime = PartitionRuntime(CFG)
    (complete,) = of(run(runtime, [ring, finish]), "calls")
    runtime.advance(BASE + 2000 + RETENTION - 1)
    assert of(run(runtime, [finish]), "calls") == []  # duplicate absorbed while retained
    runtime.advance(BASE + 2000 + RETENTION)
    assert runtime.states == {} and runtime.counts.evicted == 1
    (partial,) = of(run(runtime, [finish]), "calls")
    assert (partial["created_at"], partial["ringing_at"]) == (BASE + 2000, None)
    assert partial["version"] < complete["version"]


def test_a_duplicate_for_an_evicted_state_before_the_checkpoint_is_evicted_again() -> None:
    c = calls()
    finish = c(CSE, BASE + 2000, "FINISH")
    runtime = PartitionRuntime(CFG, persistent=True)
    run(runtime, [c(CSE, BASE + 1000, "RING"), finish])
    runtime.advance(BASE + 2000 + RETENTION + 1)
    assert runtime.states == {}
    assert run(runtime, [finish]) == []  # back from the evicting set, unchanged
    runtime.advance(BASE + 2000 + 2 * RETENTION + 2)
    assert runtime.states == {}  # not stuck in memory
    assert list(runtime.begin_checkpoint().evicted) == [("call", "call-1")]


def test_timeout_then_eviction_in_one_advance() -> None:
    runtime = PartitionRuntime(CFG, persistent=True)
    run(runtime, [calls()(CSE, BASE + 1000, "ESTABLISHED")])
    runtime.advance(BASE + 10 * 24 * HOUR)
    rows = runtime.flush()
    assert [r["closed_by"] for r in of(rows, "calls")] == ["timeout"]
    assert runtime.states == {} and runtime.open_entities() == 0
    checkpoint = runtime.begin_checkpoint()
    assert list(checkpoint.evicted) == [("call", "call-1")]
    assert checkpoint.meta["windows"]["windows"] == []  # past retention


def test_flush_renders_each_changed_entity_once() -> None:
    c = calls()
    runtime = PartitionRuntime(CFG)
    events = [c(CSE, BASE + t, s) for t, s in ((1000, "RING"), (2000, "ESTABLISHED"))]
    rows = run(runtime, events)
    assert [t for t, _ in rows] == ["calls", "status_counts", "status_counts"]
    assert runtime.flush() == []
    assert runtime.clock == BASE + 2000
    run(runtime, [c(CSE, BASE + 3000, "HOLD")])
    feed(runtime, [c(CSE, BASE + 3500, "ESTABLISHED")])
    assert {t for t, _ in runtime.flush(windows=False)} == {"calls"}  # open minute held


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        PartitionRuntime(ProcessorConfig(window_ms=0))
    with pytest.raises(ValueError, match="window_retention_ms must be <="):
        PartitionRuntime(ProcessorConfig(window_retention_ms=8 * 24 * HOUR))
    PartitionRuntime(ProcessorConfig(window_retention_ms=7 * 24 * HOUR))


# ---- a real end long after a timeout, through eviction and the state store -----------------

LATE: list[tuple[str, str, list[Envelope], Envelope, dict[str, Any]]] = [
    (
        "call FINISH 13 h after the idle timeout",
        "calls",
        [calls()("call", BASE, "NEW"), calls()(CSE, BASE + 1000, "ESTABLISHED", sipStatus=200)],
        calls()(CSE, BASE + 1000 + IDLE + 13 * HOUR, "FINISH", info="Normal"),
        {"closed_by": "event", "ended_at": BASE + 1000 + IDLE + 13 * HOUR,
         "talk_ms": IDLE + 13 * HOUR, "status": "FINISH", "info": "Normal"},
    ),
    (
        "stream UNPUBLISHED 36 h later, no keep-alives",
        "streams",
        [streams()("publishStream", BASE, "PENDING"), streams()(SSE, BASE + 1000, "PUBLISHING")],
        streams()(SSE, BASE + 36 * HOUR, "UNPUBLISHED"),
        {"closed_by": "event", "ended_at": BASE + 36 * HOUR, "final_status": "UNPUBLISHED",
         "lifetime_ms": 36 * HOUR - 1000},
    ),
    (
        "connection DISCONNECTED 30 h later",
        "connections",
        [connections()("connect", BASE), connections()(WSE, BASE + 100, "ESTABLISHED")],
        connections()(WSE, BASE + 30 * HOUR, "DISCONNECTED"),
        {"closed_by": "event", "ended_at": BASE + 30 * HOUR, "duration_ms": 30 * HOUR - 100},
    ),
    (
        "IMDN_DELIVERED 5 h after the message's idle close",
        "messages",
        [messages()("sendMessage", BASE), messages()(MSE, BASE + 500, "ACCEPTED")],
        messages()(MSE, BASE + 5 * HOUR + 30_000, "IMDN_DELIVERED"),
        {"delivered_at": BASE + 5 * HOUR + 30_000, "final_status": "IMDN_DELIVERED",
         "direction": "outgoing", "sent_at": BASE, "created_at": BASE},
    ),
]  # fmt: skip


def late_end(
    cfg: ProcessorConfig, early: list[Envelope], late: Envelope, store: MemoryStateStore | None
) -> tuple[PartitionRuntime, list[Row], list[Row]]:
    """Early events, the clock moved to just before the late one (timeouts fire, closed
    states are evicted), then the late event and a duplicate of it. With ``store`` the
    runtime checkpoints after each step and the late event finds the state there."""
    runtime = PartitionRuntime(cfg, persistent=True)
    before = run(runtime, early, store=store)
    if store is not None:
        store.checkpoint(runtime)
    runtime.advance(late["received_at"] - 1)
    before += checked(runtime.flush())
    if store is not None:
        checkpoint = store.checkpoint(runtime)
        assert list(checkpoint.evicted) == [(late["family"], late["key"])]
        assert runtime.states == {}
    after = run(runtime, [late], store=store)
    assert run(runtime, [late], store=store) == []  # its duplicate changes nothing
    return runtime, before, after


@pytest.mark.parametrize(
    ("table", "early", "late", "expected"), [c[1:] for c in LATE], ids=[c[0] for c in LATE]
)
def test_real_end_after_timeout_wins_also_after_eviction(
    table: str, early: list[Envelope], late: Envelope, expected: dict[str, Any]
) -> None:
    kept = ProcessorConfig(closed_retention_ms=40 * 24 * HOUR)  # never evicted here
    _, reference_before, reference = late_end(kept, early, late, None)
    store = MemoryStateStore()
    runtime, before, after = late_end(CFG, early, late, store)
    assert runtime.counts.adopted == 1 and runtime.counts.reused == 0
    (row,) = of(after, table)
    assert {k: row[k] for k in expected} == expected
    assert of(after, table) == of(reference, table)  # version included
    assert all(row["version"] > earlier["version"] for earlier in of(before, table))
    assert of(before, table) == of(reference_before, table)
    if table != "messages":  # a message closes silently
        assert of(before, table)[-1]["closed_by"] == "timeout"
    counted = [r for t, r in after if t in ("status_counts", "message_rates")]
    assert counted == [r for t, r in reference if t in ("status_counts", "message_rates")]


def test_late_imdn_counts_once_in_its_own_minute() -> None:
    *_, early, late, _ = LATE[3]
    _, _, after = late_end(CFG, early, late, MemoryStateStore())
    (rates,) = of(after, "message_rates")
    minute = late["received_at"] - late["received_at"] % MINUTE
    assert (rates["window_start"], rates["imdn_delivered"], rates["version"]) == (minute, 1, 1)


# ---- key reuse: a new session with the same key ---------------------------------------------

C, S, W = calls(), streams(), connections()
CALL_ENDED = [C("OnCallEvent", BASE, "NEW"), C(CSE, BASE + 1000, "ESTABLISHED"),
              C(CSE, BASE + MINUTE, "FINISH")]  # fmt: skip
ENDED = BASE + MINUTE
LATE_RETENTION = CFG.late_event_retention_ms
REUSE: list[tuple[str, list[Envelope], Envelope, bool]] = [
    ("OnCallEvent after the gap", CALL_ENDED, C("OnCallEvent", ENDED + GAP + 1, "NEW"), True),
    ("call hook after the gap", CALL_ENDED, C("call", ENDED + GAP + 1, "NEW"), True),
    ("call hook at the gap", CALL_ENDED, C("call", ENDED + GAP, "NEW"), False),
    ("late duplicate FINISH", CALL_ENDED, C(CSE, ENDED + 2 * HOUR, "FINISH"), False),
    ("status event after the gap", CALL_ENDED, C(CSE, ENDED + GAP + 1, "RING"), False),
    ("after late retention", CALL_ENDED, C(CSE, ENDED + LATE_RETENTION + 1, "RING"), True),
    ("timed-out call is not reused", CALL_ENDED[:2], C("call", BASE + IDLE + HOUR, "NEW"), False),
    (
        "publishStream after UNPUBLISHED",
        [S("publishStream", BASE, "PENDING"), S(SSE, ENDED, "UNPUBLISHED")],
        S("publishStream", ENDED + GAP + 1, "PENDING"),
        True,
    ),
    (
        "connect after DISCONNECTED",
        [W("connect", BASE), W(WSE, ENDED, "DISCONNECTED")],
        W("connect", ENDED + GAP + 1),
        True,
    ),
]  # fmt: skip


@pytest.mark.parametrize("evicted", [False, True], ids=["in memory", "from the store"])
@pytest.mark.parametrize(
    ("first", "event", "reused"), [c[1:] for c in REUSE], ids=[c[0] for c in REUSE]
)
def test_key_reuse(first: list[Envelope], event: Envelope, reused: bool, evicted: bool) -> None:
    cfg = ProcessorConfig(closed_retention_ms=MINUTE if evicted else 8 * 24 * HOUR)
    store = MemoryStateStore()
    runtime = PartitionRuntime(cfg, persistent=True)
    before = run(runtime, first, store=store)
    runtime.advance(event["received_at"] - 1)
    before += checked(runtime.flush())
    store.checkpoint(runtime)
    assert (runtime.states == {}) is evicted
    after = run(runtime, [event], store=store)
    table = {"call": "calls", "stream": "streams", "connection": "connections"}[event["family"]]
    (row,) = of(after, table)
    assert runtime.counts.reused == int(reused)
    if reused:
        t = event["received_at"]
        assert (row["incarnation"], row["created_at"], row["last_event_at"]) == (t, t, t)
        assert row["closed_by"] == "" and row["status"] == event["body"].get("status", "")
        assert row["version"] > max(r["version"] for r in of(before, table))
        rows = final(before + after)
        assert [r["incarnation"] for (name, *_), r in rows.items() if name == table] == [0, t]
    else:
        assert row["incarnation"] == 0
        assert row["created_at"] == first[0]["received_at"]
        assert row["last_event_at"] == event["received_at"]


def test_reuse_within_one_flush_still_emits_the_first_sessions_last_row() -> None:
    runtime = PartitionRuntime(CFG)
    again = C("OnCallEvent", ENDED + GAP + 1, "NEW")
    rows = run(runtime, [*CALL_ENDED, again])
    assert [(r["incarnation"], r["closed_by"]) for r in of(rows, "calls")] == [
        (0, "event"),
        (ENDED + GAP + 1, ""),
    ]
    assert status_totals(rows)[("call", "NEW")] == 2  # each session reached NEW


# ---- implausible times ------------------------------------------------------------------------

JUMP, FUTURE = CFG.max_clock_jump_ms, CFG.max_future_ms
WALL = BASE + 5000
IMPLAUSIBLE: list[tuple[str, Any, int | None, str]] = [
    ("seconds", BASE // 1000, None, "time_not_epoch_ms"),
    ("microseconds", BASE * 1000, None, "time_not_epoch_ms"),
    ("negative", -BASE, None, "time_not_epoch_ms"),
    ("before 2000", EARLIEST_MS - 1, None, "time_not_epoch_ms"),
    ("bool", True, None, "time_not_epoch_ms"),
    ("float", float(BASE + 1000), None, "time_not_epoch_ms"),
    ("string", str(BASE + 1000), None, "time_not_epoch_ms"),
    ("jump ahead of the clock", BASE + 3000 + JUMP + 1, None, "time_jump"),
    ("ahead of the wall clock", WALL + FUTURE + 1, WALL, "time_in_future"),
]


@pytest.mark.parametrize(
    ("received_at", "wall", "reason"),
    [c[1:] for c in IMPLAUSIBLE],
    ids=[c[0] for c in IMPLAUSIBLE],
)
def test_implausible_time_is_rejected_and_never_moves_the_clock(
    received_at: Any, wall: int | None, reason: str
) -> None:
    runtime = PartitionRuntime(CFG)
    run(runtime, [C(CSE, BASE + 1000, "RING"), calls("other")(CSE, BASE + 2000, "RING")])
    bad = [with_time(C(CSE, 0, "FINISH"), received_at),
           with_time(calls("new")(CSE, 0, "FAILED"), received_at)]  # fmt: skip
    ok = C(CSE, BASE + 3000, "RING")
    assert feed(runtime, [bad[0], ok, bad[1]], wall_ms=wall) == [(0, reason), (2, reason)]
    assert runtime.counts.rejected == {reason: 2}
    assert runtime.clock == BASE + 3000
    assert set(runtime.states) == {("call", "call-1"), ("call", "other")}
    rows = checked(runtime.flush())
    (row,) = of(rows, "calls")
    assert (row["status"], row["closed_by"], row["last_event_at"]) == ("RING", "", BASE + 3000)
    assert runtime.open_entities() == 2  # not closed by a timeout the bad time would fire
    assert ("call", "FINISH") not in status_totals(rows)


@pytest.mark.parametrize(
    ("received_at", "wall"),
    [(EARLIEST_MS, None), (BASE + 2000 + JUMP, None), (WALL + FUTURE, WALL)],
    ids=["2000-01-01", "exactly the clock jump", "exactly the future limit"],
)
def test_plausible_at_the_limits(received_at: int, wall: int | None) -> None:
    runtime = PartitionRuntime(CFG)
    run(runtime, [C(CSE, BASE + 2000, "RING")])
    assert feed(runtime, [calls("x")(CSE, received_at, "RING")], wall_ms=wall) == []
    assert not runtime.counts.rejected


# ---- invalid keys -----------------------------------------------------------------------------

CALL_FAILED, MESSAGE_ACCEPTED = (CSE, "FAILED"), (MSE, "ACCEPTED")
INVALID: list[tuple[str, Envs, tuple[str, str], str]] = [
    ("missing callId", Envs("c"), CALL_FAILED, "bad_callId"),
    ("empty callId", Envs("c", callId=""), CALL_FAILED, "bad_callId"),
    ("object callId", Envs("c", callId={"a": 1}), CALL_FAILED, "bad_callId"),
    ("array callId", Envs("c", callId=["a"]), CALL_FAILED, "bad_callId"),
    ("bool callId", Envs("c", callId=True), CALL_FAILED, "bad_callId"),
    ("257-byte callId", Envs("c", callId="x" * 257), CALL_FAILED, "bad_callId"),
    ("258-byte callId of 129 chars", Envs("c", callId="é" * 129), CALL_FAILED, "bad_callId"),
    ("258-byte callId of 86 chars", Envs("c", callId="€" * 86), CALL_FAILED, "bad_callId"),
    ("missing mediaSessionId", Envs("s"), (SSE, "FAILED"), "bad_mediaSessionId"),
    ("missing message id", Envs("m"), MESSAGE_ACCEPTED, "bad_id"),
    ("sendIMDN with id only", Envs("m", id="m-1"), ("sendIMDN", "IMDN_DELIVERED"), "bad_messageId"),
    ("missing sessionId", Envs("w", sessionId=None), (WSE, "FAILED"), "bad_sessionId"),
    ("object nodeId", Envs("w", nodeId={"n": 1}), (WSE, "FAILED"), "bad_nodeId"),
    ("long nodeId/sessionId", Envs("w", sessionId="s" * 200, nodeId="n" * 60), (WSE, "FAILED"),
     "bad_sessionId"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "hook", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_key_makes_no_entity_and_counts_nothing(
    build: Envs, hook: tuple[str, str], reason: str
) -> None:
    runtime = PartitionRuntime(CFG)
    method, status = hook
    events = [build(method, BASE + 1000, status), build(method, BASE + 2000, status)]
    assert feed(runtime, events) == []  # kept in the events table, not rejected
    assert runtime.flush() == []  # two such events do not merge into one entity
    assert runtime.states == {} and runtime.counts.skipped == {reason: 2}
    assert runtime.clock == BASE + 2000


@pytest.mark.parametrize(
    ("call_id", "key"),
    [(12345, "12345"), ("é" * 128, "é" * 128), (" x ", " x ")],
    ids=["number", "256 bytes", "spaces kept"],
)
def test_accepted_keys(call_id: Any, key: str) -> None:
    build = Envs("c", callId=call_id)
    rows = run(PartitionRuntime(CFG), [build(CSE, BASE, "RING"), build(CSE, BASE + 1, "FINISH")])
    (row,) = of(rows, "calls")
    assert (row["call_id"], row["status"]) == (key, "FINISH")


# ---- checkpoints and restore --------------------------------------------------------------------


def test_checkpoint_hands_over_changed_states_once_and_abort_gives_them_back() -> None:
    runtime = PartitionRuntime(CFG, persistent=True)
    run(runtime, [C(CSE, BASE, "RING"), calls("b")(CSE, BASE, "RING")])
    first = runtime.begin_checkpoint()
    assert sorted(first.states) == [("call", "b"), ("call", "call-1")]
    assert runtime.begin_checkpoint().states == {}
    run(runtime, [C(CSE, BASE + 1, "FINISH")])
    second = runtime.begin_checkpoint()
    assert list(second.states) == [("call", "call-1")]
    runtime.abort_checkpoint(second)
    runtime.abort_checkpoint(first)
    assert sorted(runtime.begin_checkpoint().states) == [("call", "b"), ("call", "call-1")]


def test_aborted_eviction_is_handed_over_again_unless_the_key_came_back() -> None:
    runtime = PartitionRuntime(CFG, persistent=True)
    finish = C(CSE, BASE, "FINISH")
    run(runtime, [finish, calls("b")(CSE, BASE, "FINISH")])
    runtime.advance(BASE + RETENTION + 1)
    checkpoint = runtime.begin_checkpoint()
    assert sorted(checkpoint.evicted) == [("call", "b"), ("call", "call-1")]
    runtime.adopt([(("call", "call-1"), checkpoint.evicted[("call", "call-1")])])
    runtime.abort_checkpoint(checkpoint)
    assert list(runtime.begin_checkpoint().evicted) == [("call", "b")]


def test_unknown_keys_and_adopt() -> None:
    runtime = PartitionRuntime(CFG, persistent=True)
    run(runtime, [C(CSE, BASE, "RING")])
    batch = [C(CSE, BASE + 1, "FINISH"), calls("b")(CSE, BASE + 1, "RING"), Envs("c")(CSE, BASE)]
    assert runtime.unknown_keys(batch) == {("call", "b")}
    other = PartitionRuntime(CFG)
    run(other, [calls("b")(CSE, BASE - HOUR, "RING"), C(CSE, BASE - HOUR, "FAILED")])
    mine = runtime.states[("call", "call-1")]
    runtime.adopt(other.states.items())
    assert runtime.states[("call", "call-1")] is mine  # memory wins
    assert runtime.counts.adopted == 1 and runtime.open_entities() == 2
    runtime.advance(BASE + 1)  # the adopted call's setup timeout was due long ago
    assert [r["call_id"] for r in of(runtime.flush(), "calls")] == ["b"]


def test_meta_round_trip_continues_windows_and_clock() -> None:
    store = MemoryStateStore()
    runtime = PartitionRuntime(CFG, persistent=True)
    run(runtime, [C(CSE, BASE, "RING"), calls("b")(CSE, BASE + 1000, "RING")])
    feed(runtime, [calls("c")(CSE, BASE + 2000, "RING")])  # not flushed: window dirty
    store.checkpoint(runtime)
    restored = store.restore(CFG)
    assert restored.clock == BASE + 2000 and restored.open_entities() == 3
    assert restored.meta() == runtime.meta()
    rows = restored.flush()
    assert of(rows, "status_counts") == of(runtime.flush(), "status_counts")
    assert [r["count"] for r in of(rows, "status_counts")] == [3]


# ---- owned envelopes (processors.split): the others only move the clock -------------------


def test_envelopes_not_owned_move_the_clock_only() -> None:
    runtime = PartitionRuntime(CFG)
    ring = calls("mine")(CSE, BASE, "RING")
    other = calls("theirs")(CSE, BASE + SETUP + 1, "FAILED")
    assert runtime.feed([ring, other], owned=[True, False]) == []
    rows = checked(runtime.flush())
    # not applied: no entity, no status counted; but its time timed the owned call out
    assert [(r["call_id"], r["closed_by"]) for r in of(rows, "calls")] == [("mine", "timeout")]
    assert status_totals(rows) == Counter({("call", "RING"): 1})
    assert runtime.clock == BASE + SETUP + 1
    assert runtime.open_entities() == 0


def test_implausible_envelopes_not_owned_are_not_reported_and_do_not_move_the_clock() -> None:
    runtime = PartitionRuntime(CFG)
    start = calls("c")(CSE, BASE, "RING")
    theirs = with_time(calls("x")(CSE, BASE, "RING"), BASE + CFG.max_clock_jump_ms + 1)
    mine = with_time(calls("y")(CSE, BASE, "RING"), "soon")
    assert runtime.feed([start, theirs, mine], owned=[True, False, True]) == [
        (2, "time_not_epoch_ms")
    ]
    assert runtime.clock == BASE
    assert runtime.counts.rejected == Counter({"time_not_epoch_ms": 1})
    assert runtime.keys_of([start, theirs], owned=[True, False])[1] == (None, "tick")
