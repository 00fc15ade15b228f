"""Deck-wide settings (``deck.toml``), periods, revision dates, and where a field sits.

``LineFinder`` maps (table, index, field) back to a line of the TOML text so every
problem names ``file:line``; ``Problems`` collects them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sinks.rating.money import ROUNDING_MODES
from sinks.rating.periods import Periods, Window, parse_clock, parse_days

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, where: str, field_name: str, message: str) -> None:
        self.items.append(
            f"{where}: {field_name}: {message}" if field_name else f"{where}: {message}"
        )

    def check(self, ok: bool, where: str, field_name: str, message: str) -> None:
        if not ok:
            self.add(where, field_name, message)


class LineFinder:
    def __init__(self, name: str, text: str) -> None:
        self.name, self.lines = name, text.splitlines()

    def at(self, table: str, index: int, field_name: str) -> str:
        """``file:line`` of ``field`` in the ``index``-th ``[table]``/``[[table]]``."""
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        starts = [n for n, line in enumerate(self.lines) if header.match(line)]
        if index >= len(starts):
            return f"{self.name}:1"
        start = starts[index]
        key = re.compile(rf"^\s*{re.escape(field_name)}\s*=") if field_name else None
        for n in range(start + 1, len(self.lines)):
            if self.lines[n].lstrip().startswith("["):
                break
            if key is not None and key.match(self.lines[n]):
                return f"{self.name}:{n + 1}"
        return f"{self.name}:{start + 1}"


def deck_settings(
    doc: dict[str, Any], text: str, problems: Problems
) -> tuple[Periods, int, str, str]:
    lines, deck = LineFinder("deck.toml", text), doc.get("deck", {})
    decimals, rounding = deck.get("decimals", 2), deck.get("rounding", "half_up")
    currency, default = str(deck.get("currency", "")), str(deck.get("default_period", "all"))
    checks = (
        ("decimals", isinstance(decimals, int) and 0 <= decimals <= 9, "an integer from 0 to 9"),
        ("rounding", rounding in ROUNDING_MODES, f"{rounding!r}: use one of {ROUNDING_MODES}"),
        ("currency", bool(_CURRENCY.match(currency)), "an ISO 4217 code such as EUR"),
        ("default_period", bool(_NAME.match(default)), "a lower-case name such as offpeak"),
    )
    for name, ok, message in checks:
        problems.check(ok, lines.at("deck", 0, name), name, message)
    try:
        zone = ZoneInfo(str(deck.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        where = lines.at("deck", 0, "timezone")
        problems.add(where, "timezone", f"unknown time zone {deck.get('timezone')!r}")
        zone = ZoneInfo("UTC")
    windows = _windows(doc.get("period", []), lines, problems)
    decimals = decimals if isinstance(decimals, int) and 0 <= decimals <= 9 else 2
    return Periods(zone, windows, default), decimals, str(rounding), currency


def _window(table: dict[str, Any]) -> Window:
    """One ``[[period]]`` window; ValueError(field, message)."""
    name = str(table.get("name", ""))
    if not _NAME.match(name):
        raise ValueError("name", "a lower-case name such as peak")
    parsed: list[Any] = []
    for key, parse in (("days", parse_days), ("from", parse_clock), ("to", parse_clock)):
        try:
            parsed.append(parse(str(table.get(key, ""))))
        except ValueError as exc:
            raise ValueError(key, str(exc)) from None
    window = Window(name, *parsed)
    if window.start_s >= window.end_s:
        raise ValueError("to", "must be after from (split an overnight window in two)")
    return window


def _windows(
    tables: list[dict[str, Any]], lines: LineFinder, problems: Problems
) -> tuple[Window, ...]:
    windows: list[Window] = []
    for index, table in enumerate(tables):
        try:
            window = _window(table)
        except ValueError as exc:
            problems.add(lines.at("period", index, exc.args[0]), exc.args[0], exc.args[1])
            continue
        for other in windows:
            if window.days & other.days and max(window.start_s, other.start_s) < min(
                window.end_s, other.end_s
            ):
                where = lines.at("period", index, "from")
                problems.add(where, "from", f"overlaps a {other.period} window")
        windows.append(window)
    return tuple(windows)


def effective_from(
    meta: dict[str, Any], zone: ZoneInfo, lines: LineFinder, problems: Problems
) -> int:
    """Epoch ms of ``effective_from``: ISO 8601; without an offset, the deck's time zone."""
    value = meta.get("effective_from")
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            problems.add(
                lines.at("revision", 0, "effective_from"),
                "effective_from",
                f"{value!r}: ISO 8601 date-time, e.g. 2026-01-01T00:00:00+01:00",
            )
            return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)
