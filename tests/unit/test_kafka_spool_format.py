"""Pure parts of the Kafka path: spool framing, bounds, envelopes, ack wait, mode switching."""

from __future__ import annotations

import orjson
import pytest

from events.catalog import resolve
from events.envelope import EnvelopeError, IdSource, make
from events.records import decode_batch
from ingest import spool_format as fmt
from ingest.kafka_record import Router, ack_wait_s, from_spool, outgoing, record_of
from ingest.spool_format import Position
from wcs_analytics.topics import check_created

# ---- spool format ------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"x", b'{"v":1}', bytes(range(256)) * 40])
def test_frame_round_trip(payload: bytes) -> None:
    framed = fmt.frame(payload) + fmt.frame(b"next")
    first = fmt.unframe(framed, 0)
    assert first == (payload, fmt.HEADER.size + len(payload))
    assert fmt.unframe(framed, first[1]) == (b"next", len(framed))


@pytest.mark.parametrize("cut", [1, fmt.HEADER.size - 1, fmt.HEADER.size, fmt.HEADER.size + 3])
def test_torn_tail_is_not_a_record(cut: int) -> None:
    framed = fmt.frame(b"payload!")
    assert fmt.unframe(framed[: len(framed) - cut], 0) is None


def test_corrupt_payload_is_not_a_record() -> None:
    framed = bytearray(fmt.frame(b"payload"))
    framed[-1] ^= 0xFF
    assert fmt.unframe(bytes(framed), 0) is None


def test_absurd_length_is_not_a_record() -> None:
    assert fmt.unframe(fmt.HEADER.pack(fmt.MAX_RECORD_BYTES + 1, 0) + b"x" * 16, 0) is None


def test_segment_names_sort_in_write_order_and_parse_back() -> None:
    names = [fmt.segment_name(seq) for seq in (1, 9, 10, 123456789)]
    assert names == sorted(names)
    assert [fmt.segment_seq(n) for n in names] == [1, 9, 10, 123456789]


@pytest.mark.parametrize(
    "name", ["position", ".lock", "segment-1.log", "segment-0000000000000000000x.log", "x.log"]
)
def test_other_files_are_not_segments(name: str) -> None:
    assert fmt.segment_seq(name) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [(b"3 120\n", Position(3, 120)), (b"", None), (b"3", None), (b"a b", None), (b"1 2 3", None)],
)
def test_position_file(text: bytes, expected: Position | None) -> None:
    assert fmt.parse_position(text) == expected
    if expected is not None:
        assert fmt.parse_position(expected.render()) == expected


def test_positions_order_by_segment_then_offset() -> None:
    assert Position(1, 999) < Position(2, 0) < Position(2, 1)


@pytest.mark.parametrize(
    ("used", "record", "bound", "fits"),
    [(0, 10, 10, True), (5, 6, 10, False), (0, 11, 10, False), (9, 1, 10, True)],
)
def test_spool_bound(used: int, record: int, bound: int, fits: bool) -> None:
    assert fmt.has_room(used, record, bound) is fits


@pytest.mark.parametrize(
    ("bound", "segment"), [(1 << 30, 64 << 20), (8 << 20, 1 << 20), (100, 1 << 10)]
)
def test_segment_size_follows_the_bound(bound: int, segment: int) -> None:
    assert fmt.segment_bytes(bound) == segment


# ---- records -----------------------------------------------------------------------------------


def test_an_envelope_on_its_way_and_back_from_the_spool() -> None:
    body = {"callId": "c-1", "nodeId": "n", "status": "RING"}
    envelope = make(resolve("callstatusevent"), body, 1_700_000_000_000, IdSource("t")())
    item = outgoing("wcs.", envelope)
    assert (item.topic, item.key) == ("wcs.call", b"c-1")
    assert orjson.loads(item.value) == envelope
    assert from_spool("wcs.", item.value) == item


@pytest.mark.parametrize(
    ("method", "body", "key"),
    [
        ("CallStatusEvent", {"callId": "c-1", "status": "RING"}, b"c-1"),
        ("StreamStatusEvent", {"mediaSessionId": 7, "status": "PLAYING"}, b"7"),
        ("sendIMDN", {"id": "imdn-3", "messageId": "m-1"}, b"m-1"),
        ("ConnectionStatusEvent", {"nodeId": "n", "sessionId": "s"}, b"n/s"),
        # no entity (the processors skip it): the envelope's own key
        ("CallStatusEvent", {"status": "RING"}, b"the-envelope-key"),
    ],
)
def test_records_are_routed_by_the_key_the_state_is_kept_under(
    method: str, body: dict[str, object], key: bytes
) -> None:
    """A recorded envelope whose ``key`` is not its entity's (edited, or written by another
    tool) still goes to the partition of the entity's other events: ``replay --kafka``
    publishes what embedded ``replay`` applies by the body."""
    envelope = make(resolve(method), body, 1_700_000_000_000, "e-1")
    envelope["key"] = "the-envelope-key"
    item = outgoing("wcs.", envelope)
    assert item.key == key
    assert from_spool("wcs.", item.value).key == key
    assert orjson.loads(item.value)["key"] == "the-envelope-key"  # the envelope as it was


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b'{"v":1,"id":"x"}'])
def test_a_spooled_payload_that_is_no_envelope_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        from_spool("wcs.", payload)
    assert issubclass(EnvelopeError, ValueError)


def test_record_of_envelopes_of_one_partition() -> None:
    ids = IdSource("t")
    envelopes = [
        make(resolve("CallStatusEvent"), {"callId": f"c-{n}", "n": n}, 1_700_000_000_000, ids())
        for n in range(3)
    ]
    record = record_of("wcs.call", 2, b"c-0", [outgoing("wcs.", e).value for e in envelopes])
    assert (record.topic, record.partition, record.key) == ("wcs.call", 2, b"c-0")
    assert record.headers == [("v", b"2"), ("count", b"3")]
    assert decode_batch(record.value) == envelopes


@pytest.mark.parametrize(("budget_ms", "wait_s"), [(2000, 1.75), (1000, 0.75), (300, 0.15)])
def test_ack_wait_leaves_room_for_the_spool(budget_ms: int, wait_s: float) -> None:
    assert ack_wait_s(budget_ms) == pytest.approx(wait_s)


# ---- mode switching ----------------------------------------------------------------------------


def test_spooling_holds_until_caught_up_with_a_producer() -> None:
    router = Router()
    assert router.mode == "direct"
    assert router.spooled() is True
    assert router.spooled() is False  # already spooling
    assert router.drained(caught_up=False, producer_ready=True) is False
    assert router.drained(caught_up=True, producer_ready=False) is False
    assert router.mode == "spooling"
    assert router.drained(caught_up=True, producer_ready=True) is True
    assert router.mode == "direct"
    assert router.drained(caught_up=True, producer_ready=True) is False
    assert router.switches == 2


# ---- topic creation ----------------------------------------------------------------------------


def test_topics_created_by_another_replica_count_as_present() -> None:
    created, failed = check_created(
        [("a", 0, None), ("b", 36, "Topic 'b' already exists."), ("c", 38, "rf 5 > 1 broker")]
    )
    assert created == ["a"]
    assert failed == ["c: rf 5 > 1 broker"]
