"""Ground truth aggregates: per-minute status counts and message rates (semantics: ``truth``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from wcs_analytics.simulate.lifecycle import Lifecycle

FAMILY = {
    "connection": "connection",
    "call": "call",
    "publisher": "stream",
    "viewer": "stream",
    "message": "message",
    "data": "data",
}
RATE_EVENTS = {
    "sent": ("method", "sendMessage"),
    "received": ("method", "OnMessageEvent"),
    "accepted": ("status", "ACCEPTED"),
    "failed": ("status", "FAILED"),
    "imdn_delivered": ("status", "IMDN_DELIVERED"),
    "imdn_failed": ("status", "IMDN_FAILED"),
}


def window(at: int, window_ms: int) -> int:
    return at - at % window_ms


def status_counts(lifecycles: Iterable[Lifecycle], window_ms: int) -> list[dict[str, Any]]:
    """Each entity counts once per status it reached, in the window of the first hook that
    arrived carrying it; keyed (window_start, family, status, app_key, node_id)."""
    counts: Counter[tuple[int, str, str, str, str]] = Counter()
    for lc in lifecycles:
        family = FAMILY.get(lc.kind)
        if family is None:
            continue
        first: dict[str, int] = {}
        for step in lc.steps:
            if step.status:
                first[step.status] = min(step.at, first.get(step.status, step.at))
        for status, at in first.items():
            counts[(window(at, window_ms), family, status, lc.ctx.app_key, lc.ctx.node_id)] += 1
    names = ("window_start", "family", "status", "app_key", "node_id")
    return [dict(zip(names, key, strict=True)) | {"count": n} for key, n in sorted(counts.items())]


def message_rates(lifecycles: Iterable[Lifecycle], window_ms: int) -> list[dict[str, Any]]:
    """Messages per (window_start, app_key, node_id): each message counts once per event kind,
    in the window of the first arrival of that kind."""
    rows: dict[tuple[int, str, str], Counter[str]] = {}
    for lc in lifecycles:
        if lc.kind != "message":
            continue
        for column, (field, value) in RATE_EVENTS.items():
            at = lc.first_method(value) if field == "method" else lc.first(value)
            if at is not None:
                key = (window(at, window_ms), lc.ctx.app_key, lc.ctx.node_id)
                rows.setdefault(key, Counter())[column] += 1
    return [
        {"window_start": w, "app_key": app, "node_id": node}
        | {column: rows[(w, app, node)][column] for column in RATE_EVENTS}
        for w, app, node in sorted(rows)
    ]
