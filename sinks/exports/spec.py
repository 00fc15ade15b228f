"""What to export: kind, period, grouping, rounding and format, validated once.

The CLI and the HTTP API both build an ``ExportSpec`` with ``make_spec`` from the same
strings, so they accept exactly the same input and produce the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sinks import timerange
from sinks.exports.rounding import Rounding, parse_rounding

KINDS = ("billing", "cdr", "sdr")
FORMATS = {
    "billing": ("csv", "jsonl", "parquet"),
    "cdr": ("csv", "jsonl", "parquet"),
    "sdr": ("sdr",),
}
DEFAULT_ROUNDING = Rounding(60, 6)
PLAIN_KEYS = ("app_key", "node_id", "caller", "sip_login")
_CUSTOM = re.compile(r"^custom\.([A-Za-z0-9_\-]{1,64})$")


@dataclass(frozen=True, slots=True)
class ExportSpec:
    kind: str
    from_ms: int
    to_ms: int
    group_by: tuple[str, ...] = ("app_key",)
    rounding: Rounding = DEFAULT_ROUNDING
    fmt: str = "csv"
    bill_failed_messages: bool = False  # a message whose SIP MESSAGE failed (4xx) is billed


def parse_time(text: str) -> int:
    """Epoch ms from ``1700000000000`` (ms), ``2023-11-14`` or ISO 8601 (no zone = UTC),
    between 1970 and 2100 (``sinks.timerange``)."""
    return timerange.parse_time(text)


def parse_group_by(text: str) -> tuple[str, ...]:
    """``app_key,custom.tenant`` -> keys; ValueError for unknown or repeated keys."""
    keys = tuple(part.strip() for part in text.split(",") if part.strip())
    if not keys:
        raise ValueError("group-by needs at least one key")
    for key in keys:
        if key not in PLAIN_KEYS and not _CUSTOM.match(key):
            raise ValueError(
                f"unknown group-by key {key!r}: use {', '.join(PLAIN_KEYS)} or custom.<field>"
            )
    if len(set(keys)) != len(keys):
        raise ValueError(f"group-by repeats a key: {text!r}")
    return keys


def custom_field(key: str) -> str | None:
    """``custom.tenant`` -> ``tenant``; None for the other keys."""
    match = _CUSTOM.match(key)
    return match[1] if match else None


def make_spec(
    kind: str,
    start: str,
    end: str,
    group_by: str | None = None,
    rounding: str | None = None,
    fmt: str | None = None,
    bill_failed_messages: bool = False,
) -> ExportSpec:
    """Validate user input; ValueError with a message fit to show the user."""
    if kind not in KINDS:
        raise ValueError(f"unknown export {kind!r}: use {', '.join(KINDS)}")
    from_ms, to_ms = parse_time(start), parse_time(end)
    timerange.check_range(from_ms, to_ms)
    fmt = fmt or FORMATS[kind][0]
    if fmt not in FORMATS[kind]:
        raise ValueError(f"{kind} export formats: {', '.join(FORMATS[kind])}, not {fmt!r}")
    return ExportSpec(
        kind=kind,
        from_ms=from_ms,
        to_ms=to_ms,
        group_by=parse_group_by(group_by) if group_by else ("app_key",),
        rounding=parse_rounding(rounding) if rounding else DEFAULT_ROUNDING,
        fmt=fmt,
        bill_failed_messages=bill_failed_messages,
    )
