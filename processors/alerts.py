"""FAILED-spike detector over per-minute ``status_counts`` rows (docs/alerts.md).

Shape: ``initialize() -> state``, ``add(state, status_counts_row) -> state``,
``evaluate(state, now_ms, rules) -> (state, alert_rows)``. The functions update
``state`` in place and return it (callers keep the returned value); they read no
clock and do no IO, so the same rows and the same ``now_ms`` sequence give the same
alerts in the embedded runner and in a Faust agent (``to_dict``/``from_dict`` for
snapshots and Faust tables).

Re-emitted rows: per ``(window_start, family, status, app_key, node_id)`` only the
highest ``version`` counts (its ``count`` is the window's full count, never added to an
earlier one). A window is evaluated exactly once, in window order, when
``now_ms > window_start + window_ms + evaluation_delay_ms``; rows for a window that was
already evaluated are ignored and counted in ``late_ignored``. Minutes without rows
are zero windows for every known series.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

from events.tables import Row
from processors.alert_rules import ATTEMPT_STATUSES, AlertRules, Rule
from processors.clock import window_start

ALL_NODES: Final = "*"  # node_id of a series of a rule with by_node = false
FORGET_BELOW: Final = 1e-6  # a quiet series whose baseline decayed below this is dropped

RowKey = tuple[str, str, str, str]  # family, status, app_key, node_id
SeriesKey = tuple[str, str, str]  # rule name, app_key, node_id (ALL_NODES unless by_node)


@dataclass(slots=True)
class Series:
    baseline: float = 0.0  # EWMA of failures per window; frozen while firing
    clear: int = 0  # consecutive clear windows while firing
    alert: dict[str, Any] | None = None  # the firing row (version 1) while firing


@dataclass(slots=True)
class DetectorState:
    origin: int | None = None  # first window evaluated (warm-up anchor)
    through: int | None = None  # last window start evaluated
    pending: dict[int, dict[RowKey, tuple[int, int]]] = field(default_factory=dict)
    series: dict[SeriesKey, Series] = field(default_factory=dict)
    late_ignored: int = 0

    def firing(self) -> int:
        return sum(1 for s in self.series.values() if s.alert is not None)

    def to_dict(self) -> dict[str, Any]:
        pending = [[ws, *k, *vc] for ws, rows in self.pending.items() for k, vc in rows.items()]
        series = [[*k, s.baseline, s.clear, s.alert] for k, s in self.series.items()]
        return {"origin": self.origin, "through": self.through, "pending": pending,
                "series": series, "late_ignored": self.late_ignored}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorState:
        state = cls(d["origin"], d["through"], late_ignored=d["late_ignored"])
        for ws, fam, status, app, node, version, count in d["pending"]:
            state.pending.setdefault(ws, {})[(fam, status, app, node)] = (version, count)
        for rule, app, node, baseline, clear, alert in d["series"]:
            state.series[(rule, app, node)] = Series(baseline, clear, alert)
        return state


def initialize() -> DetectorState:
    return DetectorState()


def add(state: DetectorState, row: dict[str, Any]) -> DetectorState:
    """Take one ``status_counts`` row (columns of events.tables.STATUS_COUNTS)."""
    fam, ws = row["family"], row["window_start"]
    if fam not in ATTEMPT_STATUSES:
        return state
    if state.through is not None and ws <= state.through:
        state.late_ignored += 1
        return state
    window = state.pending.setdefault(ws, {})
    key = (fam, row["status"], row["app_key"], row["node_id"])
    held = window.get(key)
    if held is None or row["version"] > held[0]:
        window[key] = (row["version"], row["count"])
    return state


def evaluate(
    state: DetectorState, now_ms: int, rules: AlertRules
) -> tuple[DetectorState, list[Row]]:
    """Evaluate every window that became due at ``now_ms``; returns ``alerts`` rows."""
    w = rules.window_ms
    limit = window_start(now_ms - w - rules.evaluation_delay_ms - 1, w)
    if state.through is None:
        if not state.pending or min(state.pending) > limit:
            return state, []
        state.origin = min(state.pending)
        state.through = state.origin - w
    if limit <= state.through:
        return state, []
    assert state.origin is not None
    warm_from = state.origin + rules.warmup_windows * w
    data = _collect(state, limit, rules)
    by_name = {r.name: r for r in rules.rules}
    rows: list[Row] = []
    for key in sorted(set(state.series) | set(data)):
        rule = by_name.get(key[0])
        series = state.series.pop(key, None) or Series()
        if rule is None:
            continue
        cursor = state.through + w
        for ws, (failures, attempts) in sorted(data.get(key, {}).items()):
            rows += _quiet(series, rule, key, cursor, (ws - cursor) // w, w)
            rows += _window(series, rule, key, ws, failures, attempts, ws >= warm_from, w)
            cursor = ws + w
        rows += _quiet(series, rule, key, cursor, (limit + w - cursor) // w, w)
        if series.alert is not None or series.baseline >= FORGET_BELOW:
            state.series[key] = series
    state.through = limit
    return state, rows


def _collect(
    state: DetectorState, limit: int, rules: AlertRules
) -> dict[SeriesKey, dict[int, tuple[int, int]]]:
    """Pop pending windows up to ``limit``; per series and window: (failures, attempts)."""
    data: dict[SeriesKey, dict[int, tuple[int, int]]] = {}
    for ws in sorted(s for s in state.pending if s <= limit):
        for (fam, status, app, node), (_, count) in sorted(state.pending.pop(ws).items()):
            for rule in rules.rules:
                if rule.family != fam or status not in rule.attempt_statuses:
                    continue
                key = (rule.name, app, node if rule.by_node else ALL_NODES)
                failures, attempts = data.setdefault(key, {}).get(ws, (0, 0))
                failed = count if status in rule.failure_statuses else 0
                data[key][ws] = (failures + failed, attempts + count)
    return data


def _hot(failures: int, ratio: float, baseline: float, least: int, share: float, k: float) -> bool:
    return failures >= least and ratio >= share and failures > k * baseline


def _window(
    s: Series, rule: Rule, key: SeriesKey, ws: int, failures: int, attempts: int, warm: bool, w: int
) -> list[Row]:
    ratio = failures / attempts if attempts else 0.0
    if s.alert is None:
        if warm and _hot(
            failures, ratio, s.baseline, rule.min_failures, rule.min_ratio, rule.baseline_factor
        ):
            s.alert, s.clear = _fired(rule, key, ws, failures, attempts, ratio, s.baseline, w), 0
            return [("alerts", dict(s.alert))]
        s.baseline = rule.ewma_alpha * failures + (1 - rule.ewma_alpha) * s.baseline
        return []
    least, share, k = rule.resolve_min_failures, rule.resolve_ratio, rule.resolve_factor
    if _hot(failures, ratio, s.baseline, least, share, k):
        s.clear = 0
        return []
    return _quiet_or_clear(s, rule, ws, w)


def _quiet_or_clear(s: Series, rule: Rule, ws: int, w: int) -> list[Row]:
    """One clear window at ``ws`` while firing: resolve after ``resolve_windows`` of them."""
    s.clear += 1
    if s.clear < rule.resolve_windows or s.alert is None:
        return []
    resolved = s.alert | {"state": "resolved", "resolved_at": ws + w, "version": 2}
    s.alert, s.clear = None, 0
    return [("alerts", resolved)]


def _quiet(s: Series, rule: Rule, key: SeriesKey, first: int, n: int, w: int) -> list[Row]:
    """``n`` windows without rows from ``first`` on (closed form, no per-window loop)."""
    if n <= 0:
        return []
    rows: list[Row] = []
    if s.alert is not None:
        need = rule.resolve_windows - s.clear
        if n < need:
            s.clear += n
            return []
        s.clear = rule.resolve_windows - 1
        rows = _quiet_or_clear(s, rule, first + (need - 1) * w, w)
        n -= need
    s.baseline *= (1 - rule.ewma_alpha) ** n
    return rows


def _fired(
    rule: Rule, key: SeriesKey, ws: int, failures: int, attempts: int, ratio: float,
    baseline: float, w: int,
) -> dict[str, Any]:  # fmt: skip
    name, app_key, node_id = key
    alert_id = hashlib.sha1(f"{name}|{app_key}|{node_id}|{ws}".encode()).hexdigest()[:20]
    return {
        "alert_id": alert_id, "rule": name, "family": rule.family, "app_key": app_key,
        "node_id": node_id, "state": "firing", "fired_at": ws + w, "resolved_at": None,
        "window_start": ws, "failures": failures, "attempts": attempts, "ratio": ratio,
        "baseline": baseline, "version": 1,
    }  # fmt: skip
