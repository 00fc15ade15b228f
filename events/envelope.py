"""The envelope: one accepted WCS callback, as every downstream stage sees it.

``{"v":1, "id", "received_at", "method", "family", "key", "node_id",
"session_id", "app_key", "body"}`` -- ``received_at`` is Unix epoch
milliseconds (UTC) stamped on receipt and is the event time everywhere
downstream, because WCS payloads carry no timestamp. ``body`` is already
redacted. Serialized with orjson, one JSON object per envelope.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Final, TypedDict

import msgspec
import orjson

from events.catalog import FAMILIES, Method, entity_key
from events.jsonbody import loads

VERSION: Final = 1


class Envelope(TypedDict):
    v: int
    id: str
    received_at: int
    method: str
    family: str
    key: str
    node_id: str | None
    session_id: str | None
    app_key: str | None
    body: dict[str, Any]


class EnvelopeError(ValueError):
    """A record that is not a valid envelope (bad replay input, corrupt message)."""


def _opt_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


class IdSource:
    """Unique envelope ids: a random per-process prefix plus a counter.

    Cheaper than uuid4 on the hook path and unique across ingest replicas.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self._prefix = prefix if prefix is not None else os.urandom(6).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"


def make(method: Method, body: dict[str, Any], received_at: int, envelope_id: str) -> Envelope:
    """Build the envelope of one callback; ``body`` must already be redacted."""
    return {
        "v": VERSION,
        "id": envelope_id,
        "received_at": received_at,
        "method": method.name,
        "family": method.family,
        "key": entity_key(method, body),
        "node_id": _opt_text(body.get("nodeId")),
        "session_id": _opt_text(body.get("sessionId")),
        "app_key": _opt_text(body.get("appKey")),
        "body": body,
    }


def encode(envelope: Envelope) -> bytes:
    return orjson.dumps(envelope)


_REQUIRED: Final = (
    ("id", str),
    ("received_at", int),
    ("method", str),
    ("family", str),
    ("key", str),
    ("body", dict),
)


def validate(obj: Any) -> Envelope:
    """Check a decoded object against the contract; raises EnvelopeError naming the problem."""
    if not isinstance(obj, dict):
        raise EnvelopeError(f"envelope must be a JSON object, got {type(obj).__name__}")
    if obj.get("v") != VERSION:
        raise EnvelopeError(f"unsupported envelope version {obj.get('v')!r}")
    for field, kind in _REQUIRED:
        value = obj.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EnvelopeError(f"field {field!r} must be {kind.__name__}, got {value!r:.60}")
    if obj["family"] not in FAMILIES:
        raise EnvelopeError(f"unknown family {obj['family']!r}")
    for field in ("node_id", "session_id", "app_key"):
        if obj.get(field) is not None and not isinstance(obj[field], str):
            raise EnvelopeError(f"field {field!r} must be a string or null")
        obj.setdefault(field, None)
    return obj  # type: ignore[return-value]


def decode(raw: bytes | str) -> Envelope:
    """The envelope in ``raw`` (integers beyond 64 bits kept exact); raises EnvelopeError."""
    try:
        obj = loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    return validate(obj)


class Wire(msgspec.Struct):
    """The envelope as it is read from a file or a record: the body kept as raw JSON."""

    v: int
    id: str
    received_at: int
    method: str
    family: str
    key: str
    body: msgspec.Raw
    node_id: str | None = None
    session_id: str | None = None
    app_key: str | None = None


_WIRE = msgspec.json.Decoder(Wire)


def decode_keeping_body(raw: bytes) -> tuple[Envelope, str]:
    """``decode`` plus the body's JSON text as it was (for the ``events`` row: no second
    serialisation). Raises EnvelopeError like ``decode``."""
    try:
        wire = _WIRE.decode(raw)
    except msgspec.DecodeError:
        return _fallback(raw)
    return from_wire(wire) or _fallback(raw)


def from_wire(wire: Wire) -> tuple[Envelope, str] | None:
    """The envelope of a strictly decoded ``Wire`` and its body's JSON text; None when the
    strict decode is not enough to accept it (the caller takes the slow path, which names
    the problem or accepts what the strict decoder refused)."""
    raw_body = bytes(wire.body)
    try:
        body = loads(raw_body)  # integers beyond 64 bits kept exact
    except orjson.JSONDecodeError:
        return None
    if wire.v != VERSION or wire.family not in FAMILIES or type(body) is not dict:
        return None
    envelope: Envelope = {
        "v": wire.v,
        "id": wire.id,
        "received_at": wire.received_at,
        "method": wire.method,
        "family": wire.family,
        "key": wire.key,
        "node_id": wire.node_id,
        "session_id": wire.session_id,
        "app_key": wire.app_key,
        "body": body,
    }
    return envelope, raw_body.decode()


def _fallback(raw: bytes) -> tuple[Envelope, str]:
    """The slow path names what is wrong (or accepts what the strict decoder refused)."""
    envelope = decode(raw)
    return envelope, orjson.dumps(envelope["body"]).decode()
