"""Properties.

Per entity: any permutation of its events plus exact duplicates gives the same final row
(versions aside: they count changes), the last emitted row always matches the state, and
versions strictly increase.

Per partition: feeding a trace in any batch sizes gives the same rows, and feeding it in
parts -- checkpoint, JSON state store, fresh runtime between parts -- gives the same final
rows (what FINAL keeps, version included) as feeding it whole, windows and alerts too.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import orjson
from helpers.envs import (
    BASE,
    CFG,
    HOUR,
    MINUTE,
    Envs,
    calls,
    connections,
    final,
    fold,
    live_gaps,
    messages,
    of,
    step,
    streams,
    unversioned,
)
from helpers.runtime import MemoryStateStore, feed_in_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from events.envelope import Envelope
from events.tables import Row
from processors import calls as call_mod
from processors import connections as connection_mod
from processors import messages as message_mod
from processors import streams as stream_mod
from processors.alert_rules import AlertRules, parse_rules
from processors.alert_stage import AlertStage
from processors.config import ProcessorConfig
from processors.families import family
from processors.runtime import PartitionRuntime
from processors.split import Merger, Part
from processors.state_codec import dump, same

TIMES = st.integers(min_value=0, max_value=50_000)
TEXT = st.sampled_from(["", "a", "b"])

CALL_EVENTS = [
    ("CallStatusEvent", s)
    for s in (
        "TRYING",
        "RING",
        "SESSION_PROGRESS",
        "ESTABLISHED",
        "HOLD",
        "BUSY",
        "FINISH",
        "FAILED",
    )
] + [
    ("OnCallEvent", "PENDING"),
    ("call", "NEW"),
    ("hangup", None),
    ("TransferStatusEvent", "FAILED"),
]
STREAM_EVENTS = [
    ("StreamStatusEvent", s) for s in ("PUBLISHING", "PLAYING", "UNPUBLISHED", "STOPPED", "FAILED")
] + [("publishStream", "PENDING"), ("playHLS", "NEW"), ("RecordingStatusEvent", "FAILED")]
MESSAGE_EVENTS = [
    ("MessageStatusEvent", s)
    for s in (
        "SENT",
        "ACCEPTED",
        "FAILED",
        "IMDN_DELIVERED",
        "IMDN_FAILED",
        "IMDN_ERROR",
        "RECEIVED",
    )
] + [("sendMessage", None), ("OnMessageEvent", None)]
CONNECTION_EVENTS = [
    ("ConnectionStatusEvent", s) for s in ("ESTABLISHED", "DISCONNECTED", "FAILED")
] + [
    ("connect", None),
    ("RegistrationStatusEvent", "REGISTERED"),
    ("RegistrationStatusEvent", "FAILED"),
]
EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "info": TEXT,
        "caller": TEXT,
        "name": TEXT,
        "published": st.booleans(),
        "hasVideo": st.booleans(),
        "sipStatus": st.sampled_from([180, "183", 200, 486]),
        "custom": st.sampled_from([{"k": 1}, {"k": 2}]),
        "from": TEXT,
        "clientVersion": TEXT,
    },
)


def events_of(
    build: Envs, kinds: Sequence[tuple[str, str | None]], times: st.SearchStrategy[int] = TIMES
) -> st.SearchStrategy[list[Envelope]]:
    one = st.tuples(st.sampled_from(kinds), times, EXTRAS).map(
        lambda x: build(x[0][0], x[1], x[0][1], **x[2])
    )
    return st.lists(one, min_size=1, max_size=12)


@st.composite
def shuffled(draw: st.DrawFn, events: list[Envelope]) -> list[Envelope]:
    """A permutation of ``events`` with some exact duplicates inserted."""
    order = draw(st.permutations(events))
    dups = draw(st.lists(st.sampled_from(events), max_size=5))
    out = list(order)
    for dup in dups:
        out.insert(draw(st.integers(0, len(out))), dup)
    return out


def check_invariant(
    module: Any, table: str, data: st.DataObject, events: list[Envelope]
) -> tuple[Any, Any]:
    run = step(module)
    reference, _ = fold(run, events)
    state, rows = fold(run, data.draw(shuffled(events)))
    assert module.render(state) == module.render(reference)
    assert state.statuses == reference.statuses
    emitted = of(rows, table)
    assert unversioned(emitted[-1]) == module.render(state)
    versions = [r["version"] for r in emitted]
    assert versions == sorted(set(versions))  # a later state always beats an earlier one
    return reference, state


@settings(max_examples=150, deadline=None)
@given(st.data(), events_of(calls(), CALL_EVENTS))
def test_call_row_is_order_independent(data: st.DataObject, events: list[Envelope]) -> None:
    check_invariant(call_mod, "calls", data, events)


@settings(max_examples=150, deadline=None)
@given(st.data(), events_of(messages(), MESSAGE_EVENTS))
def test_message_row_is_order_independent(data: st.DataObject, events: list[Envelope]) -> None:
    reference, state = check_invariant(message_mod, "messages", data, events)
    assert message_mod.marks(state) == message_mod.marks(reference)


@settings(max_examples=150, deadline=None)
@given(st.data(), events_of(connections(), CONNECTION_EVENTS))
def test_connection_row_is_order_independent(data: st.DataObject, events: list[Envelope]) -> None:
    check_invariant(connection_mod, "connections", data, events)


@settings(max_examples=150, deadline=None)
@given(
    st.data(),
    events_of(streams(), STREAM_EVENTS),
    st.lists(TIMES, max_size=CFG.keepalive_reorder_window),
)
def test_stream_row_and_gaps_are_order_independent(
    data: st.DataObject, events: list[Envelope], beats: list[int]
) -> None:
    build = streams()
    keepalives = [build("StreamKeepAliveEvent", t, "PUBLISHING") for t in beats]
    events = events + keepalives
    run = step(stream_mod)
    reference, ref_rows = fold(run, events)
    state, rows = fold(run, data.draw(shuffled(events)))
    assert stream_mod.render(state) == stream_mod.render(reference)
    assert unversioned(of(rows, "streams")[-1]) == stream_mod.render(state)
    times = sorted(set(beats))
    expected = {(a, b) for a, b in pairwise(times) if b - a > CFG.gap_threshold_ms}
    assert live_gaps(rows) == live_gaps(ref_rows) == expected
    assert stream_mod.render(state)["keepalive_count"] == len(times)


@settings(max_examples=60, deadline=None)
@given(
    st.data(),
    events_of(calls(), CALL_EVENTS, TIMES.map(lambda t: BASE + t)),
    events_of(streams(), STREAM_EVENTS, TIMES.map(lambda t: BASE + t)),
)
def test_status_counts_are_once_per_entity_status(
    data: st.DataObject, call_events: list[Envelope], stream_events: list[Envelope]
) -> None:
    runtime = PartitionRuntime(CFG)
    assert runtime.feed(data.draw(shuffled(call_events + stream_events))) == []
    rows = runtime.flush()
    counted = sorted(
        (r["family"], r["status"]) for r in of(rows, "status_counts") for _ in range(r["count"])
    )
    call_state, _ = fold(step(call_mod), call_events)
    stream_state, _ = fold(step(stream_mod), stream_events)
    expected = sorted(
        [("call", s) for s in call_state.statuses] + [("stream", s) for s in stream_state.statuses]
    )
    assert counted == expected


# ---- a partition: batching and restarts never change the rows ----------------------------

# short timeouts and retentions, so a two-hour trace times out, evicts, reuses keys,
# drops late window hits and fires and resolves alerts
TRACE_CFG = ProcessorConfig(
    call_setup_timeout_ms=2 * MINUTE,
    call_idle_timeout_ms=20 * MINUTE,
    stream_idle_timeout_ms=15 * MINUTE,
    connection_idle_timeout_ms=30 * MINUTE,
    message_idle_timeout_ms=10 * MINUTE,
    closed_retention_ms=3 * MINUTE,
    key_reuse_gap_ms=5 * MINUTE,
    late_event_retention_ms=HOUR,
    window_retention_ms=20 * MINUTE,
)
RULES: AlertRules = parse_rules(
    {
        "detector": {"warmup_windows": 0},
        "defaults": {"min_failures": 1, "min_ratio": 0.1, "resolve_min_failures": 1},
    }
)
KINDS: dict[str, Sequence[tuple[str, str | None]]] = {
    "call": CALL_EVENTS,
    "stream": [*STREAM_EVENTS, ("StreamKeepAliveEvent", "PUBLISHING")],
    "message": [*MESSAGE_EVENTS, ("sendIMDN", "IMDN_DELIVERED")],
    "connection": CONNECTION_EVENTS,
    "data": [("DataStatusEvent", "ACCEPTED"), ("DataStatusEvent", "FAILED"), ("sendData", None)],
}
BUILDERS: dict[str, Callable[[int], Envs]] = {
    "call": lambda i: calls(f"call-{i}"),
    "stream": lambda i: streams(f"ms-{i}", name=f"cam{i}"),
    "message": lambda i: Envs("m", id=f"msg-{i}", messageId=f"msg-{i}"),
    "connection": lambda i: connections(f"sess-{i}", nodeId=f"node-{i % 2}"),
    "data": lambda i: Envs("d", operationId=f"op-{i}"),
}
SPAN_MS = 2 * HOUR


def trace_of(picks: list[tuple[str, int, int, int, int]], disorder: list[int]) -> list[Envelope]:
    """Events ``(family, entity, kind index, time offset, extras seed)``, ids unique, sorted
    by time plus a per-event delay (``disorder``: arrival reordered by up to that much)."""
    builders = {(fam, i): BUILDERS[fam](i) for fam, i, *_ in picks}
    events = []
    for fam, i, kind, offset, seed in picks:
        method, status = KINDS[fam][kind % len(KINDS[fam])]
        extras: dict[str, Any] = {"sipStatus": 486} if seed % 3 == 0 and fam == "call" else {}
        if seed % 4 == 0:
            extras["info"] = f"info-{seed % 3}"
        events.append(builders[(fam, i)](method, BASE + offset, status, **extras))
    delays = disorder or [0]
    arrival = [e["received_at"] + delays[n % len(delays)] for n, e in enumerate(events)]
    return [e for _, _, e in sorted(zip(arrival, range(len(events)), events, strict=True))]


def picks(span_ms: int) -> st.SearchStrategy[tuple[str, int, int, int, int]]:
    return st.tuples(
        st.sampled_from(sorted(KINDS)),
        st.integers(0, 2),
        st.integers(0, 20),
        st.integers(0, span_ms),
        st.integers(0, 11),
    )


@st.composite
def traces(draw: st.DrawFn) -> list[Envelope]:
    """Dense traces (many events per entity and timeout) and sparse ones."""
    span = draw(st.sampled_from([20 * MINUTE, HOUR, SPAN_MS]))
    chosen = draw(st.lists(picks(span), min_size=1, max_size=60))
    disorder = draw(st.lists(st.integers(0, 10 * MINUTE), max_size=8))
    events = trace_of(chosen, disorder)
    for dup in draw(st.lists(st.integers(0, len(events) - 1), max_size=6)):
        events.insert(draw(st.integers(0, len(events))), events[dup])
    return events


def whole(events: list[Envelope], sizes: list[int]) -> list[Row]:
    """Everything fed to one runtime in batches of ``sizes``, flushed once at the end."""
    runtime = PartitionRuntime(TRACE_CFG, AlertStage(RULES), persistent=True)
    feed_in_batches(runtime, events, sizes)
    return runtime.flush()


def in_parts(events: list[Envelope], cuts: list[int], sizes: list[int]) -> list[Row]:
    """Each part fed to a fresh runtime restored from the previous part's checkpoint."""
    store, rows = MemoryStateStore(), []
    bounds = [0, *sorted(cuts), len(events)]
    for start, end in pairwise(bounds):
        runtime = store.restore(TRACE_CFG, AlertStage(RULES))
        feed_in_batches(runtime, events[start:end], sizes, store)
        rows += runtime.flush()
        store.checkpoint(runtime)
        for key, state in runtime.states.items():  # nothing changed goes unsaved
            assert same(store.state(key), state), key
    return rows


@settings(max_examples=200, deadline=None)
@given(traces(), st.lists(st.integers(1, 9), min_size=1, max_size=4), st.data())
def test_restarts_between_parts_give_the_rows_of_one_run(
    events: list[Envelope], sizes: list[int], data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(events)), min_size=1, max_size=3))
    assert final(in_parts(events, cuts, sizes)) == final(whole(events, [len(events)]))


@settings(max_examples=120, deadline=None)
@given(traces())
def test_batch_sizes_never_change_the_rows(events: list[Envelope]) -> None:
    assert whole(events, [1]) == whole(events, [7]) == whole(events, [len(events)])


def seeded_trace(seed: int) -> list[Envelope]:
    rnd = random.Random(seed)
    picks = [
        (fam, rnd.randrange(3), rnd.randrange(21), rnd.randrange(SPAN_MS), rnd.randrange(12))
        for fam in sorted(KINDS)
        for _ in range(60)
    ]
    events = trace_of(picks, [rnd.randrange(10 * MINUTE) for _ in range(7)])
    quiet = [  # sessions left open: they time out
        calls("quiet")("CallStatusEvent", BASE + HOUR, "RING"),
        streams("quiet")("StreamKeepAliveEvent", BASE + HOUR, "PUBLISHING"),
        connections("quiet")("ConnectionStatusEvent", BASE + 10 * MINUTE, "ESTABLISHED"),
    ]
    for env in quiet:  # arriving in time order, before the clock passes their deadline
        at = next(n for n, e in enumerate(events) if e["received_at"] > env["received_at"])
        events.insert(at, env)
    for env in rnd.sample(events, 20):
        events.insert(rnd.randrange(len(events)), env)
    return events


def test_the_seeded_traces_exercise_every_rule() -> None:
    """The property runs above are only as good as their traces: a few seeded ones must time
    out, evict, reuse keys, drop late hits, fire and resolve alerts, and restart the same."""
    for seed in range(3):
        events = seeded_trace(seed)
        runtime = PartitionRuntime(TRACE_CFG, AlertStage(RULES), persistent=True)
        assert runtime.feed(events) == []
        rows = runtime.flush()
        counts = runtime.counts
        assert counts.evicted and counts.reused and runtime.late_dropped
        for table in ("calls", "streams", "connections"):
            assert {r["closed_by"] for r in of(rows, table)} >= {"timeout", "event"}
        assert {r["state"] for r in of(rows, "alerts")} == {"firing", "resolved"}
        assert of(rows, "keepalive_gaps") and of(rows, "message_rates")
        cuts = [len(events) // 3, len(events) // 2, len(events) * 4 // 5]
        assert final(in_parts(events, cuts, [5, 1, 13])) == final(rows)
        assert whole(events, [1]) == whole(events, [7]) == rows


# ---- one input in N key-owning runtimes (processors.split) -------------------------------


def owner_of(family_name: str, key: str | None, parts: int) -> int:
    """The part that owns an entity key (of an envelope or of a stored state)."""
    return zlib.crc32(f"{family_name}/{key}".encode()) % parts


def owners_of(events: Sequence[Envelope], parts: int) -> list[int]:
    """One owner per entity key (keyless envelopes create nothing: any owner will do)."""
    keys = PartitionRuntime.keys_of(events)
    return [owner_of(env["family"], key, parts) for env, (key, _) in zip(events, keys, strict=True)]


def batches(events: list[Envelope], sizes: list[int]) -> list[tuple[int, int]]:
    """(start, end) of consecutive batches of ``sizes`` (cycled)."""
    bounds, start, i = [], 0, 0
    while start < len(events):
        end = start + max(1, sizes[i % len(sizes)])
        bounds.append((start, min(end, len(events))))
        start, i = end, i + 1
    return bounds


def serial(
    events: list[Envelope], sizes: list[int], flush_each: bool, stage: AlertStage | None = None
) -> list[Row]:
    """One runtime; with ``flush_each`` a flush (windows too) after every batch."""
    runtime, rows = PartitionRuntime(TRACE_CFG, stage or AlertStage(RULES)), []
    for start, end in batches(events, sizes):
        assert runtime.feed(events[start:end]) == []
        if flush_each:
            rows += runtime.flush()
    return rows + runtime.flush()


def split(
    events: list[Envelope],
    parts: int,
    sizes: list[int],
    flush_each: bool,
    stage: AlertStage | None = None,
) -> list[Row]:
    """``serial`` through ``parts`` Parts and a Merger."""
    owners = owners_of(events, parts)
    shares = [Part(TRACE_CFG, index) for index in range(parts)]
    merger, rows = Merger(TRACE_CFG, stage or AlertStage(RULES)), []

    def flush() -> list[Row]:
        out = [row for part in shares for row in part.flush()]
        merger.add([part.take_emissions() for part in shares])
        return out + merger.flush()

    for start, end in batches(events, sizes):
        batch = events[start:end]
        for part in shares:
            assert part.feed(batch, owners[start:end]) == []
        merger.add([part.take_emissions() for part in shares])
        merger.feed(batch)
        if flush_each:
            rows += flush()
    return rows + flush()


@settings(max_examples=150, deadline=None)
@given(
    traces(),
    st.integers(2, 3),
    st.lists(st.integers(1, 9), min_size=1, max_size=3),
    st.booleans(),
)
def test_key_owning_parts_give_the_rows_and_alerts_of_one_runtime(
    events: list[Envelope], parts: int, sizes: list[int], flush_each: bool
) -> None:
    one, many = serial(events, sizes, flush_each), split(events, parts, sizes, flush_each)
    assert final(many) == final(one)
    assert of(many, "alerts") == of(one, "alerts")


def test_key_owning_parts_on_the_seeded_traces() -> None:
    """Timeouts, evictions, reused keys, late hits, alerts firing and resolving (see the test
    above): N parts give one runtime's final rows and the same alerts in the same order."""
    for seed in range(3):
        events = seeded_trace(seed)
        for parts, sizes, flush_each in ((2, [50], False), (3, [7, 1, 13], True), (4, [1], False)):
            one = serial(events, sizes, flush_each)
            many = split(events, parts, sizes, flush_each)
            assert final(many) == final(one), (seed, parts)
            assert of(many, "alerts") == of(one, "alerts"), (seed, parts)
            assert {r["state"] for r in of(many, "alerts")} == {"firing", "resolved"}


def test_key_owning_parts_leave_the_alert_state_of_one_runtime() -> None:
    """The merger hands the detector each window once per due point or flush, summed over
    the parts, as one runtime emits it: the detector's state (late rows ignored included)
    is one runtime's, also when the input's time goes back (two traces one after the
    other, as two nodes' logs concatenated)."""

    def failing(prefix: str) -> list[Envelope]:  # one window, one series, many calls
        return [calls(f"{prefix}{n}")("CallStatusEvent", BASE + n * 500, "FAILED")
                for n in range(40)]  # fmt: skip

    mover = calls("mover")
    late = [*failing("a"), mover("CallStatusEvent", BASE + 5 * MINUTE, "RING"), *failing("b")]
    late.append(mover("CallStatusEvent", BASE + 6 * MINUTE, "FAILED"))
    events = late + seeded_trace(0) + seeded_trace(1)
    for parts, sizes, flush_each in ((2, [50], False), (3, [7, 1, 13], True), (4, [1], False)):
        one, many = AlertStage(RULES), AlertStage(RULES)
        serial(events, sizes, flush_each, one)
        split(events, parts, sizes, flush_each, many)
        want, got = one.to_json(), many.to_json()
        assert want["late_ignored"] > 0
        for state in (want, got):
            state["pending"].sort(key=orjson.dumps)
        assert got == want, (parts, sizes)


def split_segment(
    events: list[Envelope], parts: int, sizes: list[int], store: MemoryStateStore
) -> list[Row]:
    """``events`` through key-owning parts restored from ``store`` (as ``in_parts`` restores one
    runtime: the meta, the open states; closed ones looked up), flushed, then checkpointed into
    ``store`` as one runtime's checkpoint."""
    shares = [Part(TRACE_CFG, index, persistent=True) for index in range(parts)]
    merger = Merger(TRACE_CFG, AlertStage(RULES))
    if store.meta is not None:
        meta = orjson.loads(store.meta)
        for part in shares:
            part.load_meta(meta)
        merger.load_meta(meta)
        for key in sorted(store.texts):
            state = store.state(key)
            if family(key[0]).is_open(state):
                shares[owner_of(key[0], key[1], parts)].runtime.adopt([(key, state)])
    owners, rows = owners_of(events, parts), []
    for start, end in batches(events, sizes):
        batch = events[start:end]
        for part in shares:
            assert part.feed(batch, owners[start:end], store.lookup) == []
        merger.add([part.take_emissions() for part in shares])
        merger.feed(batch)
    rows += [row for part in shares for row in part.flush()]
    merger.add([part.take_emissions() for part in shares])
    rows += merger.flush()
    metas = []
    for part in shares:
        checkpoint = part.runtime.begin_checkpoint()
        for states in (checkpoint.states, checkpoint.evicted):
            for key, state in states.items():
                store.texts[key] = orjson.dumps(dump(state))
        metas.append(checkpoint.meta)
    store.meta = orjson.dumps(merger.meta(metas))
    return rows


def one_segment(events: list[Envelope], sizes: list[int], store: MemoryStateStore) -> list[Row]:
    runtime = store.restore(TRACE_CFG, AlertStage(RULES))
    feed_in_batches(runtime, events, sizes, store)
    rows = runtime.flush()
    store.checkpoint(runtime)
    return rows


@settings(max_examples=120, deadline=None)
@given(traces(), st.integers(2, 3), st.lists(st.integers(1, 9), min_size=1, max_size=3), st.data())
def test_key_owning_parts_and_one_runtime_continue_each_other(
    events: list[Envelope], parts: int, sizes: list[int], data: st.DataObject
) -> None:
    """A stored state written by parts is one runtime's, and the other way round: a replay in
    parts can follow `run` or a replay in one runtime, and be followed by them."""
    cut = data.draw(st.integers(0, len(events)))
    expected = final(whole(events, [len(events)]))
    head, tail = events[:cut], events[cut:]
    for first, second in (("one", "parts"), ("parts", "one"), ("parts", "parts")):
        store, rows = MemoryStateStore(), []
        for how, segment in ((first, head), (second, tail)):
            if how == "one":
                rows += one_segment(segment, sizes, store)
            else:
                rows += split_segment(segment, parts, sizes, store)
        assert final(rows) == expected, (first, second)


def test_key_owning_parts_continue_one_runtime_on_the_seeded_traces() -> None:
    for seed in range(3):
        events = seeded_trace(seed)
        expected = final(whole(events, [len(events)]))
        for cut in (len(events) // 3, len(events) * 4 // 5):
            for first, second in (("one", "parts"), ("parts", "one"), ("parts", "parts")):
                store, rows = MemoryStateStore(), []
                for how, segment in ((first, events[:cut]), (second, events[cut:])):
                    if how == "one":
                        rows += one_segment(segment, [13], store)
                    else:
                        rows += split_segment(segment, 3, [13], store)
                assert final(rows) == expected, (seed, cut, first, second)
