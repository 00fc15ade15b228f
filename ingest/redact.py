"""Removal of secret keys from hook bodies before they leave the HTTP edge.

Copy-on-write: containers are copied only on the path to a removed key, so a
body without secrets is returned as the very same object (the common case,
kept cheap on the hook path). The input is never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def redact(value: Any, keys: frozenset[str]) -> Any:
    """``value`` without any dict entry whose key, lower-cased, is in ``keys`` (lower-case).

    Walks nested dicts and lists at any depth; returns ``value`` itself when
    nothing matched.
    """
    kind = type(value)
    if kind is dict:
        return _redact_dict(value, keys)
    if kind is list:
        return _redact_list(value, keys)
    return value


def _redact_dict(obj: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    changes: dict[str, Any] | None = None
    for key, item in obj.items():
        if key.lower() in keys:
            changes = changes or {}
            changes[key] = _DROP
        elif type(item) is dict or type(item) is list:
            new = redact(item, keys)
            if new is not item:
                changes = changes or {}
                changes[key] = new
    if changes is None:
        return obj
    return {
        key: changes.get(key, item) for key, item in obj.items() if changes.get(key) is not _DROP
    }


def _redact_list(items: list[Any], keys: frozenset[str]) -> list[Any]:
    out: list[Any] | None = None
    for index, item in enumerate(items):
        new = redact(item, keys)
        if new is not item:
            out = out or list(items)
            out[index] = new
    return items if out is None else out


_DROP: Any = object()


class Redactor:
    """``redact`` with a byte-level pre-check: a raw body that cannot contain a key is skipped.

    The pre-check is exact for ASCII bodies without backslashes (so no ``\\u``
    escapes hide a key; spellings that only differ in case are found by
    lower-casing the bytes); any other body gets the full walk.
    """

    __slots__ = ("_keys", "_needles")

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = frozenset(key.lower() for key in keys)
        # a key containing another key cannot occur without it: search the shorter one only
        needles = {key.encode() for key in self._keys}
        self._needles = tuple(
            sorted(n for n in needles if not any(o != n and o in n for o in needles))
        )

    @property
    def keys(self) -> frozenset[str]:
        return self._keys

    def __call__(self, body: dict[str, Any], raw: bytes) -> dict[str, Any]:
        """``body`` (parsed from ``raw``) with the secret keys removed."""
        if raw.isascii() and b"\\" not in raw:
            lowered = raw.lower()
            for needle in self._needles:
                if needle in lowered:
                    break
            else:
                return body
        result: dict[str, Any] = _redact_dict(body, self._keys)
        return result
