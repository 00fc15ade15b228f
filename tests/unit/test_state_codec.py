"""state_codec: every family state survives the JSON round trip of the state store, and the
restored state goes on exactly like the original (same rows for the same next events)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from helpers.envs import CFG, Envs, calls, connections, fold, messages, step, streams

from events.envelope import Envelope
from processors import calls as call_mod
from processors import connections as connection_mod
from processors import messages as message_mod
from processors import side
from processors import streams as stream_mod
from processors.families import family
from processors.state_codec import dump, load, same, slots

C, S, M, W = calls(), streams(name="cam"), messages(), connections()
KA = "StreamKeepAliveEvent"

CASES: list[tuple[str, Any, list[Envelope], list[Envelope]]] = [
    (
        "call answered, on hold, with sip and custom",
        call_mod,
        [
            C("call", 1000, "NEW", caller="a", custom={"k": [1, 2]}, incoming=False),
            C("CallStatusEvent", 1500, "RING", sipStatus=180),
            C("CallStatusEvent", 2000, "ESTABLISHED", sipStatus=200),
            C("CallStatusEvent", 3000, "HOLD"),
            C("TransferStatusEvent", 3500, "FAILED"),
        ],
        [C("CallStatusEvent", 4000, "ESTABLISHED"), C("CallStatusEvent", 9000, "FINISH")],
    ),
    (
        "call ended by BUSY",
        call_mod,
        [C("CallStatusEvent", 1000, "BUSY", sipStatus=486, info="Busy Here")],
        [C("CallStatusEvent", 1200, "FINISH"), C("CallStatusEvent", 900, "RING")],
    ),
    (
        "stream with keep-alive gaps pending",
        stream_mod,
        [
            S("publishStream", 1000, "PENDING", published=True),
            *(S(KA, t, "PUBLISHING") for t in (2000, 12_000, 40_000, 90_000)),
        ],
        [S(KA, 60_000, "PUBLISHING"), S("StreamStatusEvent", 95_000, "UNPUBLISHED")],
    ),
    (
        "message with IMDN",
        message_mod,
        [M("sendMessage", 1000, contentType="text/plain"), M("MessageStatusEvent", 1100, "SENT")],
        [M("MessageStatusEvent", 1500, "ACCEPTED"), M("MessageStatusEvent", 900, "IMDN_ERROR")],
    ),
    (
        "connection with registration",
        connection_mod,
        [
            W("connect", 1000, sipLogin="1001"),
            W("ConnectionStatusEvent", 1100, "ESTABLISHED"),
            W("RegistrationStatusEvent", 1200, "REGISTERED"),
        ],
        [W("RegistrationStatusEvent", 1300, "FAILED"), W("ConnectionStatusEvent", 9000, "FAILED")],
    ),
]


def round_trip(state: Any) -> Any:
    return load(type(state), orjson.loads(orjson.dumps(dump(state))))


@pytest.mark.parametrize(
    ("module", "events", "more"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_round_trip_then_continue_identically(
    module: Any, events: list[Envelope], more: list[Envelope]
) -> None:
    run = step(module)
    original, _ = fold(run, events)
    module.expire(original, 2 * 3_600_000, CFG)  # times out the stream and the message
    restored = round_trip(original)
    assert same(restored, original)
    assert orjson.dumps(dump(restored)) == orjson.dumps(dump(original))
    assert module.render(restored) == module.render(original)
    assert (restored.version, restored.emitted) == (original.version, original.emitted)
    _, rows = fold(run, more, state=original)
    _, restored_rows = fold(run, more, state=restored)
    assert restored_rows == rows and rows
    assert same(restored, original)


def test_stream_pending_gaps_survive() -> None:
    state = stream_mod.StreamState("ms-1", 0)
    for t in (0, 40_000, 20_000, 90_000):
        stream_mod.apply(state, S(KA, t, "PUBLISHING"), CFG)
    assert state.keepalives.pending and state.keepalives.gaps
    restored = round_trip(state)
    assert restored.keepalives.pending == state.keepalives.pending
    assert restored.keepalives.gaps == state.keepalives.gaps
    assert stream_mod.take_gap_rows(restored) == stream_mod.take_gap_rows(state)
    assert restored.keepalives.pending == {}


def test_side_state_round_trip() -> None:
    build = Envs("d", operationId="op-1")
    state = side.SeenState("op-1", 1000)
    for env in (build("DataStatusEvent", 1000, "ACCEPTED"), build("DataStatusEvent", 900, "X")):
        side.apply(state, env, CFG)
    side.expire(state, 10**9, CFG)
    restored = round_trip(state)
    assert same(restored, state)
    assert (restored.seen, restored.timed_out_at) == (("ACCEPTED", "X"), 1000 + 3_600_000)
    assert side.apply(restored, build("DataStatusEvent", 2000, "ACCEPTED"), CFG) is None


@pytest.mark.parametrize("name", ["call", "stream", "message", "connection", "data"])
def test_fresh_state_of_every_family_round_trips(name: str) -> None:
    """Every slot is set from the start (a checkpoint can come before any change)."""
    cls = family(name).state_cls
    state = cls("k", 1000, 7)
    restored = round_trip(state)
    assert same(restored, state)
    assert (restored.key, restored.incarnation, restored.emitted) == ("k", 7, 0)
    assert {"key", "incarnation", "changes", "emitted", "timed_out_at"} <= set(slots(cls))


def test_same_sees_a_difference() -> None:
    a, _ = fold(step(call_mod), [C("CallStatusEvent", 1000, "RING")])
    b = round_trip(a)
    b.incarnation = 5
    assert not same(a, b)
