"""Property: any permutation of one entity's events plus exact duplicates gives the same
final row (ignoring version), and the last emitted row always matches the state."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

from helpers.envs import (
    CFG,
    Envs,
    calls,
    connections,
    fold,
    live_gaps,
    messages,
    of,
    streams,
    unversioned,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from events.envelope import Envelope
from processors import calls as call_mod
from processors import connections as connection_mod
from processors import messages as message_mod
from processors import streams as stream_mod
from processors.pipeline import Pipeline

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
    build: Envs, kinds: list[tuple[str, str | None]]
) -> st.SearchStrategy[list[Envelope]]:
    one = st.tuples(st.sampled_from(kinds), TIMES, EXTRAS).map(
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
    step: Callable[..., Any],
    render: Callable[[Any], dict[str, Any]],
    table: str,
    data: st.DataObject,
    events: list[Envelope],
) -> tuple[Any, Any]:
    reference, _ = fold(step, events)
    state, rows = fold(step, data.draw(shuffled(events)))
    assert render(state) == render(reference)
    assert state.statuses == reference.statuses
    emitted = of(rows, table)
    assert unversioned(emitted[-1]) == render(state)
    assert [r["version"] for r in emitted] == list(range(1, len(emitted) + 1))
    return reference, state


@settings(max_examples=150, deadline=None)
@given(st.data(), events_of(calls(), CALL_EVENTS))
def test_call_row_is_order_independent(data: st.DataObject, events: list[Envelope]) -> None:
    check_invariant(call_mod.step, call_mod.render, "calls", data, events)


@settings(max_examples=150, deadline=None)
@given(st.data(), events_of(messages(), MESSAGE_EVENTS))
def test_message_row_is_order_independent(data: st.DataObject, events: list[Envelope]) -> None:
    reference, state = check_invariant(
        message_mod.step, message_mod.render, "messages", data, events
    )
    assert state.marks == reference.marks


@settings(max_examples=150, deadline=None)
@given(st.data(), events_of(connections(), CONNECTION_EVENTS))
def test_connection_row_is_order_independent(data: st.DataObject, events: list[Envelope]) -> None:
    check_invariant(connection_mod.step, connection_mod.render, "connections", data, events)


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
    reference, ref_rows = fold(stream_mod.step, events)
    shuffled_events = data.draw(shuffled(events))
    state, rows = fold(stream_mod.step, shuffled_events)
    assert stream_mod.render(state) == stream_mod.render(reference)
    assert unversioned(of(rows, "streams")[-1]) == stream_mod.render(state)
    times = sorted(set(beats))
    expected = {(a, b) for a, b in pairwise(times) if b - a > CFG.gap_threshold_ms}
    assert live_gaps(rows) == live_gaps(ref_rows) == expected
    assert stream_mod.render(state)["keepalive_count"] == len(times)


@settings(max_examples=60, deadline=None)
@given(st.data(), events_of(calls(), CALL_EVENTS), events_of(streams(), STREAM_EVENTS))
def test_status_counts_are_once_per_entity_status(
    data: st.DataObject, call_events: list[Envelope], stream_events: list[Envelope]
) -> None:
    pipeline = Pipeline(CFG)
    rows = []
    for env in data.draw(shuffled(call_events + stream_events)):
        rows += pipeline.process(env)
    rows += pipeline.flush()
    counted = sorted(
        (r["family"], r["status"]) for r in of(rows, "status_counts") for _ in range(r["count"])
    )
    call_state, _ = fold(call_mod.step, call_events)
    stream_state, _ = fold(stream_mod.step, stream_events)
    expected = sorted(
        [("call", s) for s in call_state.statuses] + [("stream", s) for s in stream_state.statuses]
    )
    assert counted == expected
