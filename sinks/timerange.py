"""Time parameters of the read side (KPI API, exports): parsed once, bounded, ValueError if bad.

ClickHouse silently wraps or clamps times outside its types' range, which turns a typo into
an empty or wrong answer; so every ``from``/``to`` must lie in ``[MIN_MS, MAX_MS]``
(1970-01-01 to 2100-01-01 UTC) and a range may span at most ``MAX_RANGE_MS``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MIN_MS: Final = 0  # 1970-01-01T00:00:00Z
MAX_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_RANGE_MS: Final = 400 * 86_400_000
BOUNDS_TEXT: Final = "between 1970-01-01T00:00:00Z and 2100-01-01T00:00:00Z"


def parse_time(text: str) -> int:
    """Epoch ms from ``1767225600000`` or ISO 8601 (``2026-01-01T00:00:00Z``; no zone = UTC)."""
    text = text.strip()
    if text.lstrip("-").isdigit() and len(text) <= 20:
        ms = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ms = round(moment.timestamp() * 1000)
        except (ValueError, OverflowError):
            raise ValueError(
                f"not a time: {text[:40]!r} (epoch ms or ISO 8601, e.g. 2026-01-01T00:00:00Z)"
            ) from None
    if not MIN_MS <= ms <= MAX_MS:
        raise ValueError(f"time {text[:40]!r} is out of range: must be {BOUNDS_TEXT}")
    return ms


def check_range(from_ms: int, to_ms: int, max_range_ms: int = MAX_RANGE_MS) -> None:
    """ValueError unless ``from_ms < to_ms`` and the range is at most ``max_range_ms``."""
    if to_ms <= from_ms:
        raise ValueError("the period is empty: 'to' must be after 'from'")
    if to_ms - from_ms > max_range_ms:
        raise ValueError(f"the period is longer than {max_range_ms // 86_400_000} days")
