"""Hook bodies parse exactly: integers beyond 64 bits are neither rounded nor refused."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.envelope import decode, encode
from events.jsonbody import loads, may_hold_big_int

CASES = [
    b'{"a":123456789012345678901234567890}',
    b'{"a":-9223372036854775809,"b":[18446744073709551616]}',
    b'{"below_i64":-9223372036854775809}',  # 19 digits: orjson would make it a float
    b'{"max_u64":18446744073709551615,"min_i64":-9223372036854775808}',
    b'{"nested":{"l":[1,2,{"n":99999999999999999999999999999999999999}]}}',
    b'{"s":"12345678901234567890123","f":1.5,"n":null}',
]


@pytest.mark.parametrize("raw", CASES)
def test_round_trip_is_exact(raw: bytes) -> None:
    assert orjson.dumps(loads(raw)) == raw


def test_in_range_integers_stay_ints() -> None:
    value = loads(b'{"a":18446744073709551615,"b":-9223372036854775808,"c":"1"}')
    assert value == {"a": 2**64 - 1, "b": -(2**63), "c": "1"}


def test_common_bodies_take_the_orjson_path() -> None:
    assert not may_hold_big_int(b'{"createDate":1664260776957,"id":"012345678901234567"}')
    assert may_hold_big_int(b'{"id":"0123456789012345678"}')  # a false alarm: still exact


def test_invalid_json_raises_orjson_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        loads(b'{"a":123456789012345678901234567890')


def test_envelope_round_trip_keeps_big_integers() -> None:
    raw = (
        b'{"v":1,"id":"i","received_at":1,"method":"connect","family":"connection",'
        b'"key":"k","node_id":null,"session_id":null,"app_key":null,'
        b'"body":{"billing":123456789012345678901234567890}}'
    )
    assert encode(decode(raw)) == raw


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_any_integer_survives(n: int) -> None:
    raw = b'{"n":%d}' % n
    assert orjson.dumps(loads(raw)) == raw


def test_big_integers_survive_pickling_to_another_process() -> None:
    """`run` pickles envelopes to its processing process (multiprocessing's pickler)."""
    import pickle
    from multiprocessing.reduction import ForkingPickler

    raw = b'{"n":123456789012345678901234567890,"m":[-99999999999999999999]}'
    value = loads(raw)
    assert orjson.dumps(pickle.loads(ForkingPickler.dumps(value))) == raw
    assert orjson.dumps(pickle.loads(pickle.dumps(value))) == raw
