"""JSON parsing that keeps integers beyond 64 bits exactly (orjson turns them into floats).

``loads`` parses with orjson; only when the text holds a run of 19 or more digits (the
shortest integer orjson may not represent is -9223372036854775809) is it parsed again with
the standard library, and integers outside orjson's range become ``orjson.Fragment`` values: every
``orjson.dumps`` downstream (the events row, the spool, Kafka) writes their digits
verbatim (and pickling them, to the processing process of ``run``, keeps them: the
reducer registered below). Other stages see them as opaque values. The check is one
``bytes.translate`` and a substring search (about 1 us for an 860-byte hook body:
bench/hook_parse_bench.py, numbers in bench/README.md).
"""

from __future__ import annotations

import copyreg
import json
from typing import Any, Final

import orjson

_DIGITS: Final = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x2E for byte in range(256))
_LONG_RUN: Final = b"0" * 19
_MIN, _MAX = -(2**63), 2**64 - 1  # orjson's integer range (i64 and u64)


def _exact_int(text: str) -> int | orjson.Fragment:
    value = int(text)
    return value if _MIN <= value <= _MAX else orjson.Fragment(text.encode())


def _reduce_fragment(fragment: orjson.Fragment) -> tuple[Any, tuple[bytes]]:
    return orjson.Fragment, (orjson.dumps(fragment),)


copyreg.pickle(orjson.Fragment, _reduce_fragment)


def may_hold_big_int(raw: bytes) -> bool:
    """Whether ``raw`` has 19+ consecutive ASCII digits (else orjson parses it exactly)."""
    return _LONG_RUN in raw.translate(_DIGITS)


def loads(raw: bytes | str) -> Any:
    """orjson.loads, with integers beyond 64 bits kept exact; raises orjson.JSONDecodeError."""
    value = orjson.loads(raw)
    data = raw.encode() if isinstance(raw, str) else raw
    if not may_hold_big_int(data):
        return value
    return json.loads(data, parse_int=_exact_int)
