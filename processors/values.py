"""Body value converters and JSON round-trip helpers for entity states."""

from __future__ import annotations

from typing import Any

import orjson

Json = str | int | bool


def text(value: Any) -> Json | None:
    """A non-empty string (numbers are stringified); None when absent or empty."""
    if value.__class__ is str:
        return value or None
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def flag(value: Any) -> Json | None:
    """A bool (or "true"/"false"); None when absent or not boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def json_text(value: Any) -> Json | None:
    """orjson text of any present value, keys sorted so equal objects give equal text."""
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def tuplify(value: Any) -> Any:
    """JSON lists back to tuples (dicts keep their keys), inverse of ``asdict`` + orjson."""
    if isinstance(value, list):
        return tuple(tuplify(v) for v in value)
    if isinstance(value, dict):
        return {k: tuplify(v) for k, v in value.items()}
    return value
