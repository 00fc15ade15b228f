"""The Kafka record value codec (events.records): batches of envelopes, and old single envelopes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from events.catalog import resolve
from events.envelope import Envelope, EnvelopeError, IdSource, encode, make
from events.records import (
    EMPTY_BYTES,
    batch_bytes,
    batch_headers,
    decode_batch,
    encode_batch,
    join_encoded,
    split_batch,
)

IDS = IdSource("rec")


def _envelope(method: str, body: dict[str, Any], at: int = 1_700_000_000_000) -> Envelope:
    return make(resolve(method), body, at, IDS())


ENVELOPES = [
    _envelope("CallStatusEvent", {"callId": "c-1", "nodeId": "n", "status": "RING"}),
    _envelope("CallStatusEvent", {"callId": "c-2", "nodeId": "n", "note": "ünïcode \u2028"}),
    _envelope("StreamKeepAliveEvent", {"mediaSessionId": "m-1", "nested": {"a": [1, 2.5, None]}}),
]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_round_trip_keeps_envelopes_and_order(count: int) -> None:
    envelopes = ENVELOPES[:count]
    assert decode_batch(encode_batch(envelopes)) == envelopes


def test_each_element_is_exactly_the_envelope_json() -> None:
    value = encode_batch(ENVELOPES)
    parsed = orjson.loads(value)
    assert parsed["v"] == 2 and list(parsed) == ["v", "envelopes"]
    assert [orjson.dumps(e) for e in parsed["envelopes"]] == [encode(e) for e in ENVELOPES]
    assert value == join_encoded([encode(e) for e in ENVELOPES])


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_size_is_known_before_encoding(count: int) -> None:
    encoded = [encode(e) for e in ENVELOPES[:count]]
    assert batch_bytes(sum(map(len, encoded)), count) == len(join_encoded(encoded))
    assert batch_bytes(0, 0) == EMPTY_BYTES


def test_headers_say_version_and_count() -> None:
    assert batch_headers(17) == [("v", b"2"), ("count", b"17")]


def test_an_old_single_envelope_record_is_read_as_one_envelope() -> None:
    assert decode_batch(encode(ENVELOPES[0])) == [ENVELOPES[0]]


def _bad(index: int) -> bytes:
    envelopes: list[Any] = [dict(e) for e in ENVELOPES]
    del envelopes[index]["key"]
    return orjson.dumps({"v": 2, "envelopes": envelopes})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'"x"', "must be a JSON object, got str"),
        (b'{"v": 3, "envelopes": []}', "unsupported record version 3"),
        (b'{"envelopes": []}', "unsupported record version None"),
        (b'{"v": true, "id": "x"}', "unsupported record version True"),
        (b'{"v": 2}', "'envelopes' must be a non-empty list, got None"),
        (b'{"v": 2, "envelopes": []}', "'envelopes' must be a non-empty list"),
        (b'{"v": 2, "envelopes": {"a": 1}}', "'envelopes' must be a non-empty list"),
        (b'{"v": 2, "envelopes": [1]}', "envelopes[0]: envelope must be a JSON object"),
        (_bad(0), "envelopes[0]: field 'key' must be str"),
        (_bad(2), "envelopes[2]: field 'key' must be str"),
        (b'{"v": 1, "id": "x"}', "field 'received_at' must be int"),
    ],
)
def test_what_is_wrong_is_named(value: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode_batch(value)
    assert message in str(caught.value)


BIG = "123456789012345678901234567890"


def _with_big_int() -> bytes:
    body = b'{"callId":"c-9","nodeId":"n","billingId":%s,"status":"RING"}' % BIG.encode()
    head = orjson.dumps({**ENVELOPES[0], "body": None})[: -len(b"null}")]
    return b'{"v":2,"envelopes":[' + head + body + b"}]}"


def test_split_keeps_the_envelopes_and_their_body_text() -> None:
    envelopes, bodies, bad = split_batch(encode_batch(ENVELOPES))
    assert envelopes == ENVELOPES and bad == []
    assert bodies == [orjson.dumps(e["body"]).decode() for e in ENVELOPES]


@pytest.mark.parametrize("split", [True, False])
def test_integers_beyond_64_bits_keep_every_digit(split: bool) -> None:
    value = _with_big_int()
    if split:
        envelopes, bodies, _ = split_batch(value)
        assert bodies == [value[value.index(b'"body":') + 7 : -3].decode()]
        assert f'"billingId":{BIG}' in str(bodies[0])
    else:
        envelopes = decode_batch(value)
    assert f'"billingId":{BIG}' in orjson.dumps(envelopes[0]["body"]).decode()


def test_split_sets_a_bad_envelope_aside_and_keeps_its_neighbours() -> None:
    envelopes, bodies, bad = split_batch(_bad(1))
    assert envelopes == [ENVELOPES[0], ENVELOPES[2]]
    assert bodies == [None, None]  # the slow path: serialised again when stored
    assert [problem for problem, _ in bad] == ["envelopes[1]: field 'key' must be str, got None"]


def test_split_reads_an_old_single_envelope_record() -> None:
    assert split_batch(encode(ENVELOPES[1])) == ([ENVELOPES[1]], [None], [])
