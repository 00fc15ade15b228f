"""Query parameters of the ``/api/kpi/...`` endpoints -> a ``Window`` (ValueError if bad)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from sinks.timerange import BOUNDS_TEXT, MAX_RANGE_MS, MIN_MS, check_range, parse_time
from wcs_analytics.api.kpi_sql import Window

DEFAULT_RANGE_MS: Final = 3_600_000
TARGET_BUCKETS: Final = 240


def auto_step_s(range_ms: int) -> int:
    """Bucket seconds: whole minutes, about ``TARGET_BUCKETS`` buckets over the range."""
    minutes = -(-range_ms // (TARGET_BUCKETS * 60_000))
    return max(1, minutes) * 60


def window_from(query: Mapping[str, str], now_ms: int | None = None) -> Window:
    """``from``/``to``/``step``/``app_key``/``node`` -> Window; the default is the last hour."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    to_ms = parse_time(query["to"]) if query.get("to") else now_ms
    from_ms = parse_time(query["from"]) if query.get("from") else to_ms - DEFAULT_RANGE_MS
    if from_ms < MIN_MS:
        raise ValueError(f"'from' is out of range: must be {BOUNDS_TEXT}")
    check_range(from_ms, to_ms, MAX_RANGE_MS)
    step = query.get("step") or ""
    if step:
        if not step.isdigit() or int(step) % 60 or not 60 <= int(step) <= 86_400:
            raise ValueError("step must be a multiple of 60 seconds, at most 86400")
        step_s = int(step)
    else:
        step_s = auto_step_s(to_ms - from_ms)
    return Window(from_ms, to_ms, step_s, query.get("app_key", ""), query.get("node", ""))
