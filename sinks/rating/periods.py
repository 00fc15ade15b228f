"""Peak/off-peak periods: weekday + local wall-clock windows in a named time zone.

An instant belongs to the period whose window holds its **local** weekday and time of day
(the deck's ``timezone``, converted from UTC with ``zoneinfo``, so it is never ambiguous),
or to the default period when no window holds it. Windows are half-open ``[from, to)``;
``to`` may be ``24:00``. ``segments`` cuts an interval where the period changes: at every
window edge (both occurrences of a repeated wall-clock time on a fall-back day) and at the
DST transitions themselves (a wall-clock edge inside a spring-forward gap takes effect at
the jump).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?$")


@dataclass(frozen=True, slots=True)
class Window:
    period: str
    days: frozenset[int]  # 0 = Monday
    start_s: int  # seconds after local midnight
    end_s: int  # exclusive, up to 86400


@dataclass(frozen=True, slots=True)
class Periods:
    zone: ZoneInfo
    windows: tuple[Window, ...] = ()
    default: str = "all"

    def names(self) -> frozenset[str]:
        return frozenset({self.default, *(w.period for w in self.windows)})

    def at(self, instant_ms: int) -> str:
        local = datetime.fromtimestamp(instant_ms // 1000, UTC).astimezone(self.zone)
        second = local.hour * 3600 + local.minute * 60 + local.second
        for window in self.windows:
            if local.weekday() in window.days and window.start_s <= second < window.end_s:
                return window.period
        return self.default

    def segments(self, start_ms: int, end_ms: int) -> list[tuple[int, int, str]]:
        """``[(from_ms, to_ms, period)]`` covering ``[start_ms, end_ms)``, in order."""
        if not self.windows:
            return [(start_ms, end_ms, self.default)]
        cuts = sorted({c for c in self._edges(start_ms, end_ms) if start_ms < c < end_ms})
        bounds = [start_ms, *cuts, end_ms]
        merged: list[tuple[int, int, str]] = []
        for low, high in itertools.pairwise(bounds):
            name = self.at(low)
            if merged and merged[-1][2] == name:
                merged[-1] = (merged[-1][0], high, name)
            else:
                merged.append((low, high, name))
        return merged

    def _edges(self, start_ms: int, end_ms: int) -> set[int]:
        clocks = {0} | {w.start_s for w in self.windows} | {w.end_s % 86400 for w in self.windows}
        first = _local_date(start_ms, self.zone) - timedelta(days=1)
        last = _local_date(end_ms, self.zone) + timedelta(days=1)
        edges: set[int] = set()
        day = first
        while day <= last:
            for clock in clocks:
                wall = datetime.combine(day, time(clock // 3600, clock // 60 % 60, clock % 60))
                for fold in (0, 1):
                    edges.add(_epoch_ms(wall.replace(tzinfo=self.zone, fold=fold)))
            edges |= _transitions(day, self.zone)
            day += timedelta(days=1)
        return edges


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000  # wall clocks are whole seconds


def _local_date(instant_ms: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(instant_ms // 1000, UTC).astimezone(zone).date()


def _transitions(day: date, zone: ZoneInfo) -> set[int]:
    """UTC offset changes during the local ``day`` (bisected to the second)."""
    low = _epoch_ms(datetime.combine(day, time(), zone)) // 1000
    high = low + 26 * 3600
    offset = _offset(low, zone)
    if _offset(high, zone) == offset:
        return set()
    while high - low > 1:  # invariant: offset at low is the old one, at high the new one
        middle = (low + high) // 2
        low, high = (middle, high) if _offset(middle, zone) == offset else (low, middle)
    return {high * 1000}


def _offset(epoch_s: int, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(zone).utcoffset()


def parse_days(text: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"mon-fri,sun"`` -> weekday numbers; ValueError."""
    out: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",")):
        low, _, high = part.partition("-")
        if low not in DAYS or (high and high not in DAYS):
            raise ValueError(f"days {text!r}: use mon..sun, ranges (mon-fri) and commas")
        first, last = DAYS.index(low), DAYS.index(high or low)
        if last < first:
            raise ValueError(f"days {text!r}: a range runs forward within a week (mon-fri)")
        out.update(range(first, last + 1))
    return frozenset(out)


def parse_clock(text: str) -> int:
    """``"08:00"`` / ``"17:30:15"`` / ``"24:00"`` -> seconds after midnight; ValueError."""
    match = _CLOCK.match(text.strip())
    seconds = 0 if match is None else int(match[1]) * 3600 + int(match[2]) * 60
    seconds += int(match[3] or 0) if match else 0
    if match is None or seconds > 86400:
        raise ValueError(f"time of day {text!r}: use HH:MM or HH:MM:SS, 00:00 to 24:00")
    return seconds
