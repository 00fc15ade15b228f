"""Redaction: secret keys removed at any depth, case-insensitively, copying only what changes."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.redact import Redactor, envelope_redactor, redact

KEYS = frozenset({"sippassword", "authtoken", "token"})

CASES: list[tuple[str, Any, Any]] = [
    ("top level", {"a": 1, "authToken": "s"}, {"a": 1}),
    ("case-insensitive", {"AUTHTOKEN": "s", "SipPassword": "p", "b": 2}, {"b": 2}),
    ("nested", {"x": {"y": {"token": "s", "z": 1}}}, {"x": {"y": {"z": 1}}}),
    ("in custom", {"custom": {"token": "12345789", "room": "r"}}, {"custom": {"room": "r"}}),
    ("list of dicts", {"l": [{"token": "s"}, {"k": 1}, 3]}, {"l": [{}, {"k": 1}, 3]}),
    ("list in list", {"l": [[{"authToken": "s", "k": 1}]]}, {"l": [[{"k": 1}]]}),
    (
        "secret value kept",
        {"tokenizer": "token", "n": "authToken"},
        {"tokenizer": "token", "n": "authToken"},
    ),
    ("containers under a secret key", {"token": {"deep": [1]}, "k": 1}, {"k": 1}),
    ("top-level list", [{"token": "s"}], [{}]),
    (
        "JSON object in a string",
        {"custom": '{"token": "s", "room": "r"}'},
        {"custom": '{"room":"r"}'},
    ),
    ("JSON array in a string", {"c": ' [{"authToken": "s"}, 1]'}, {"c": "[{},1]"}),
    (
        "JSON in JSON in a string",
        {"c": orjson.dumps({"inner": orjson.dumps({"token": "s", "k": 1}).decode()}).decode()},
        {"c": '{"inner":"{\\"k\\":1}"}'},
    ),
    ("escaped key in a string", {"c": '{"\\u0074oken": "s", "k": 2}'}, {"c": '{"k":2}'}),
    ("string that only looks like JSON", {"c": "{token: s}"}, {"c": "{token: s}"}),
    ("JSON string without a secret", {"c": '{"room": "r"}'}, {"c": '{"room": "r"}'}),
    (
        "big integer kept",
        {"c": '{"token": "s", "n": 123456789012345678901234567890}'},
        {"c": '{"n":123456789012345678901234567890}'},
    ),
]


@pytest.mark.parametrize(("name", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_redact_removes_keys_at_any_depth(name: str, value: Any, expected: Any) -> None:
    before = copy.deepcopy(value)
    assert redact(value, KEYS) == expected
    assert value == before  # input never mutated


def test_no_match_returns_the_same_object() -> None:
    body = {"a": {"b": [1, {"c": 2}]}, "custom": {"room": "r"}}
    assert redact(body, KEYS) is body


def test_only_the_path_to_a_removed_key_is_copied() -> None:
    untouched = {"big": list(range(10))}
    body = {"keep": untouched, "custom": {"token": "s"}, "l": [untouched]}
    out = redact(body, KEYS)
    assert out is not body and out["custom"] is not body["custom"]
    assert out["keep"] is untouched and out["l"] is body["l"]


def test_redactor_skips_bodies_that_cannot_hold_a_key() -> None:
    body = {"status": "PUBLISHING"}
    assert Redactor(KEYS)(body, orjson.dumps(body)) is body


@pytest.mark.parametrize(
    "raw",
    [
        b'{"\\u0074oken": "s", "a": 1}',  # escaped key: bytes never show "token"
        '{"to\u212aen": "s", "a": 1}'.encode(),  # KELVIN SIGN lower-cases to "k"
        '{"TOKEN": "s", "a": 1, "b": "\u0444"}'.encode(),  # non-ASCII body
        b'{"ToKeN": "s", "a": 1}',
    ],
)
def test_redactor_finds_keys_the_byte_check_cannot_see(raw: bytes) -> None:
    out = Redactor(["token"])(orjson.loads(raw), raw)
    assert [key for key in out if key.lower() == "token"] == []
    assert out["a"] == 1


def _reference(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _reference(v, keys) for k, v in value.items() if k.lower() not in keys}
    if isinstance(value, list):
        return [_reference(v, keys) for v in value]
    return value


_keys = st.sampled_from(["token", "Token", "authToken", "sipPassword", "a", "custom", "tok"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_redact_matches_a_deep_filter_and_redactor_agrees(value: Any) -> None:
    expected = _reference(value, KEYS)
    assert redact(value, KEYS) == expected
    if isinstance(value, dict):
        assert Redactor(KEYS)(value, orjson.dumps(value)) == expected


def test_envelope_redactor_applies_the_ingest_rule_to_recorded_envelopes() -> None:
    from events.catalog import resolve
    from events.envelope import make

    body = {"nodeId": "n", "sipPassword": "p", "custom": '{"token": "t", "x": 1}', "mine": "m"}
    envelope = make(resolve("connect"), body, 1, "id-1")
    cleaned = envelope_redactor(("Mine",))(envelope)
    assert cleaned["body"] == {"nodeId": "n", "custom": '{"x":1}'}
    assert envelope["body"] is body and "sipPassword" in body  # input untouched
    clean = make(resolve("connect"), {"nodeId": "n"}, 1, "id-2")
    assert envelope_redactor()(clean) is clean


@pytest.mark.parametrize(
    "text",
    [
        '{"nodeId": "n", "sipPassword": "p"}',
        '{"nodeId": "n", "SIPPASSWORD": "p"}',
        '{"nodeId": "n", "\\u0073ipPassword": "p"}',  # an escape hides the key from the bytes
        '{"nodeId": "é", "sipPassword": "p"}',
        '{"custom": "{\\"token\\": \\"t\\"}"}',
    ],
)
def test_envelope_redactor_given_the_body_text_still_finds_every_key(text: str) -> None:
    from events.catalog import resolve
    from events.envelope import make
    from events.jsonbody import loads

    envelope = make(resolve("connect"), loads(text), 1, "id-1")
    cleaned = envelope_redactor()(envelope, text)
    assert cleaned == envelope_redactor()(envelope)  # the pre-check changes nothing
    assert "sippassword" not in orjson.dumps(cleaned["body"]).decode().lower()
    assert "token" not in orjson.dumps(cleaned["body"]).decode().lower()


def test_envelope_redactor_skips_the_walk_of_a_body_without_any_key() -> None:
    from events.catalog import resolve
    from events.envelope import make

    body = {"nodeId": "n", "custom": {"nested": ["a", {"b": 1}]}}
    envelope = make(resolve("connect"), body, 1, "id-1")
    assert envelope_redactor()(envelope, orjson.dumps(body).decode()) is envelope
