"""The value of a Kafka input record: a batch of envelopes (``v`` 2), or one envelope (``v`` 1).

``{"v":2,"envelopes":[<envelope>,...]}`` -- each element exactly the envelope
JSON of ``events.envelope.encode``, in publish order; all envelopes of a record
share its topic and partition. Records written by older versions hold one
envelope as the whole value (the envelope's own ``"v":1``); ``decode_batch``
reads both. Headers (informational, ``decode_batch`` does not need them):
``v`` = ``2`` and ``count`` = number of envelopes. Pure, no IO. docs/envelope.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec
import orjson

from events.envelope import VERSION as ENVELOPE_VERSION
from events.envelope import Envelope, EnvelopeError, Wire, encode, from_wire, validate
from events.jsonbody import loads

BATCH_VERSION: Final = 2
_OPEN: Final = b'{"v":2,"envelopes":['
_CLOSE: Final = b"]}"
EMPTY_BYTES: Final = len(_OPEN) + len(_CLOSE)  # a batch value around its envelopes


class _WireBatch(msgspec.Struct):
    v: int
    envelopes: list[Wire]


_BATCH: Final = msgspec.json.Decoder(_WireBatch)


def join_encoded(encoded: Sequence[bytes]) -> bytes:
    """The batch value of envelopes already encoded with ``events.envelope.encode``."""
    return _OPEN + b",".join(encoded) + _CLOSE


def encode_batch(envelopes: Iterable[Envelope]) -> bytes:
    return join_encoded([encode(envelope) for envelope in envelopes])


def batch_bytes(encoded_bytes: int, count: int) -> int:
    """Size of the value of ``count`` envelopes whose encodings add up to ``encoded_bytes``."""
    return EMPTY_BYTES + encoded_bytes + max(count - 1, 0)


def batch_headers(count: int) -> list[tuple[str, bytes]]:
    return [("v", b"2"), ("count", b"%d" % count)]


def decode_batch(value: bytes) -> list[Envelope]:
    """The envelopes of one record value, in publish order; each checked with ``validate``.

    Raises EnvelopeError naming the problem (and the index of a bad envelope):
    not JSON, not an object, an unknown ``v``, ``envelopes`` not a non-empty list.
    """
    try:
        obj: Any = loads(value)  # integers beyond 64 bits kept exact
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"record value is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EnvelopeError(f"record value must be a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if version == ENVELOPE_VERSION and not isinstance(version, bool):
        return [validate(obj)]  # one envelope per record (written before batches)
    if version != BATCH_VERSION or isinstance(version, bool):
        raise EnvelopeError(
            f"unsupported record version {version!r} (1: one envelope, 2: a batch of envelopes)"
        )
    envelopes = obj.get("envelopes")
    if not isinstance(envelopes, list) or not envelopes:
        raise EnvelopeError(f"'envelopes' must be a non-empty list, got {envelopes!r:.60}")
    out: list[Envelope] = []
    for index, item in enumerate(envelopes):
        try:
            out.append(validate(item))
        except EnvelopeError as exc:
            raise EnvelopeError(f"envelopes[{index}]: {exc}") from None
    return out


def split_batch(value: bytes) -> tuple[list[Envelope], list[str | None], list[tuple[str, Any]]]:
    """Like ``decode_batch`` but one bad envelope does not cost its neighbours: (valid
    envelopes in order, their bodies' JSON text as it was in the record (None: serialise
    it again), [(problem, the bad item)]). Raises EnvelopeError only when the record itself
    is unreadable (not JSON, not an object, unknown ``v``, no list)."""
    fast = _split_strict(value)
    if fast is not None:
        return fast[0], fast[1], []
    try:
        envelopes = decode_batch(value)
        return envelopes, [None] * len(envelopes), []
    except EnvelopeError as exc:
        if not str(exc).startswith("envelopes["):
            raise
    items = loads(value)["envelopes"]
    good: list[Envelope] = []
    bad: list[tuple[str, Any]] = []
    for index, item in enumerate(items):
        try:
            good.append(validate(item))
        except EnvelopeError as exc:
            bad.append((f"envelopes[{index}]: {exc}", item))
    return good, [None] * len(good), bad


def _split_strict(value: bytes) -> tuple[list[Envelope], list[str | None]] | None:
    """A batch record whose every envelope passes the strict decoder (the common case: one
    pass in C, the bodies' text kept); None sends it to the slow path."""
    try:
        batch = _BATCH.decode(value)
    except msgspec.DecodeError:
        return None
    if batch.v != BATCH_VERSION or not batch.envelopes:
        return None
    envelopes: list[Envelope] = []
    bodies: list[str | None] = []
    for wire in batch.envelopes:
        got = from_wire(wire)
        if got is None:
            return None
        envelopes.append(got[0])
        bodies.append(got[1])
    return envelopes, bodies
