"""FAILED-spike detector (processors/alerts.py): synthetic minutes, hand-computed values."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from processors import alerts
from processors.alert_rules import DEFAULT_RULES, AlertRules, Rule

W = 60_000
CALL = Rule("call_spike", "call", attempt_statuses=("FINISH", "BUSY", "FAILED"), ewma_alpha=0.5)
RULES = AlertRules((CALL,), window_ms=W, evaluation_delay_ms=0, warmup_windows=2)

Minute = dict[str, int]  # status -> count for app "a", node "n1"


def row(minute: int, status: str, count: int, version: int = 1, **dims: str) -> dict[str, Any]:
    return {
        "window_start": minute * W,
        "family": dims.get("family", "call"),
        "status": status,
        "app_key": dims.get("app_key", "a"),
        "node_id": dims.get("node_id", "n1"),
        "count": count,
        "version": version,
    }


def run(
    minutes: list[Minute], rules: AlertRules = RULES, state: alerts.DetectorState | None = None
) -> tuple[alerts.DetectorState, list[dict[str, Any]]]:
    """Feed minute i's rows, then evaluate just after minute i closed (delay 0)."""
    state = state or alerts.initialize()
    out: list[dict[str, Any]] = []
    for i, minute in enumerate(minutes):
        for status, count in minute.items():
            state = alerts.add(state, row(i, status, count))
        state, rows = alerts.evaluate(state, (i + 1) * W + rules.evaluation_delay_ms + 1, rules)
        assert all(table == "alerts" for table, _ in rows)
        out += [values for _, values in rows]
    return state, out


QUIET: Minute = {"FAILED": 1, "FINISH": 20}
SPIKE: Minute = {"FAILED": 30, "FINISH": 20}


def baseline(
    state: alerts.DetectorState, key: tuple[str, str, str] = ("call_spike", "a", "*")
) -> float:
    return state.series[key].baseline


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        ([4], 2.0),  # 0.5*4 + 0.5*0
        ([4, 8], 5.0),  # 0.5*8 + 0.5*2
        ([4, 8, 0], 2.5),
        ([4, 8, 0, 6], 4.25),  # 0.5*6 + 0.5*2.5
        ([10, 10, 10], 8.75),  # 5, 7.5, 8.75
    ],
)
def test_ewma_of_failures_per_window(failures: list[int], expected: float) -> None:
    rules = AlertRules((replace(CALL, min_failures=10**6),), W, 0, 0)  # never fires
    state, out = run([{"FAILED": f, "FINISH": 100} for f in failures], rules)
    assert out == []
    assert baseline(state) == expected


def test_minutes_without_rows_decay_the_baseline_in_closed_form() -> None:
    rules = AlertRules((replace(CALL, min_failures=10**6),), W, 0, 0)
    state, _ = run([{"FAILED": 8, "FINISH": 1}], rules)  # b = 4
    state, _ = alerts.evaluate(state, 4 * W + 1, rules)  # minutes 1, 2, 3 empty
    assert baseline(state) == 0.5  # 4 * 0.5**3


def test_spike_fires_once_and_resolves_after_three_clear_windows() -> None:
    minutes = [QUIET] * 5 + [SPIKE] * 3 + [QUIET] * 3
    state, out = run(minutes)
    fired, resolved = out
    want = 1 - 0.5**5  # EWMA of five windows with 1 failure each: 0.96875
    assert fired == {
        "alert_id": fired["alert_id"], "rule": "call_spike", "family": "call", "app_key": "a",
        "node_id": "*", "state": "firing", "fired_at": 6 * W, "resolved_at": None,
        "window_start": 5 * W, "failures": 30, "attempts": 50, "ratio": 0.6, "baseline": want,
        "version": 1,
    }  # fmt: skip
    assert resolved == fired | {"state": "resolved", "resolved_at": 11 * W, "version": 2}
    assert state.firing() == 0
    assert baseline(state) == want  # frozen while firing, learning again afterwards


def test_a_second_spike_after_resolution_is_a_new_alert() -> None:
    _, out = run([QUIET] * 5 + [SPIKE] + [QUIET] * 3 + [SPIKE])
    assert [r["state"] for r in out] == ["firing", "resolved", "firing"]
    assert out[0]["alert_id"] == out[1]["alert_id"] != out[2]["alert_id"]
    assert out[2]["window_start"] == 9 * W


def test_hysteresis_a_hot_window_restarts_the_clear_count() -> None:
    # 4 of 24: below the firing thresholds (5, 20%) but above the resolve ones (3, 10%, 2x b)
    lukewarm: Minute = {"FAILED": 4, "FINISH": 20}
    minutes = [QUIET] * 5 + [SPIKE, lukewarm, QUIET, QUIET, lukewarm, QUIET, QUIET, QUIET]
    _, out = run(minutes)
    assert [(r["state"], r["resolved_at"]) for r in out] == [("firing", None), ("resolved", 13 * W)]


def test_steady_high_failure_baseline_does_not_flap() -> None:
    pattern = [30, 50, 40, 45, 35, 55, 25, 40]
    minutes = [{"FAILED": pattern[i % 8], "FINISH": 60} for i in range(60)]
    state, out = run(minutes, DEFAULT_RULES)  # built-in rules: warm-up 5, alpha 0.3, k 3
    assert out == []
    assert 30 < baseline(state, ("call_failed_spike", "a", "*")) < 50


def test_low_volume_app_does_not_fire_on_one_of_two_failures() -> None:
    rules = replace(DEFAULT_RULES, evaluation_delay_ms=0)
    _, out = run([QUIET] * 6 + [{"FAILED": 1, "FINISH": 1}, {"FAILED": 2}], rules)
    assert out == []
    _, out = run([QUIET] * 6 + [{"FAILED": 5, "FINISH": 1}], rules)  # the minimum is reached
    assert [(r["failures"], r["baseline"]) for r in out] == [(5, pytest.approx(1 - 0.7**6))]


def test_no_alert_during_warm_up() -> None:
    _, out = run([SPIKE, SPIKE, QUIET])  # warm-up 2: minutes 0 and 1 only learn
    assert out == []


def test_re_emitted_window_rows_count_their_latest_version_once() -> None:
    state = alerts.initialize()
    for minute in range(5):
        state = alerts.add(state, row(minute, "FINISH", 20))
    for r in (row(5, "FAILED", 10), row(5, "FAILED", 30, version=3), row(5, "FAILED", 20, 2)):
        state = alerts.add(state, r)  # v3 wins although v2 arrives after it
    state = alerts.add(state, row(5, "FINISH", 20))
    state = alerts.add(state, row(5, "FINISH", 20))  # exact duplicate
    state, out = alerts.evaluate(state, 6 * W + 1, RULES)
    assert [(v["failures"], v["attempts"]) for _, v in out] == [(30, 50)]
    state = alerts.add(state, row(5, "FAILED", 90, version=4))  # window already evaluated
    state, out = alerts.evaluate(state, 7 * W + 1, RULES)
    assert out == [] and state.late_ignored == 1


def test_evaluation_cadence_does_not_change_the_result() -> None:
    minutes = [QUIET] * 5 + [SPIKE] + [{}] * 2 + [QUIET] + [{}] * 4
    _, every_minute = run(minutes)
    state = alerts.initialize()
    for i, minute in enumerate(minutes):
        for status, count in minute.items():
            state = alerts.add(state, row(i, status, count))
    state, rows = alerts.evaluate(state, len(minutes) * W + 1, RULES)  # once, at the end
    assert [v for _, v in rows] == every_minute
    assert [r["resolved_at"] for r in every_minute] == [None, 9 * W]  # quiet 6, 7 + QUIET 8


def test_a_window_waits_for_the_evaluation_delay() -> None:
    rules = replace(RULES, evaluation_delay_ms=65_000, warmup_windows=0)
    state = alerts.add(alerts.initialize(), row(0, "FAILED", 30))
    state, out = alerts.evaluate(state, W + 65_000, rules)  # not strictly after: not yet
    assert out == [] and state.through is None
    state, out = alerts.evaluate(state, W + 65_001, rules)
    assert len(out) == 1


def test_by_node_rules_split_series_and_app_rules_sum_nodes() -> None:
    per_node = replace(CALL, name="per_node", by_node=True, min_failures=5)
    rules = AlertRules((CALL, per_node), W, 0, 0)
    state = alerts.initialize()
    for node in ("n1", "n2"):
        state = alerts.add(state, row(0, "FAILED", 3, node_id=node))
    state = alerts.add(state, row(0, "FAILED", 9, app_key="b", node_id="n3"))
    state, out = alerts.evaluate(state, W + 1, rules)
    got = sorted((v["rule"], v["app_key"], v["node_id"], v["failures"]) for _, v in out)
    assert got == [
        ("call_spike", "a", "*", 6),
        ("call_spike", "b", "*", 9),
        ("per_node", "b", "n3", 9),
    ]


def test_other_families_and_statuses_are_not_mixed_in() -> None:
    rules = replace(RULES, warmup_windows=0)
    state = alerts.initialize()
    for r in (row(0, "FAILED", 9, family="stream"), row(0, "ESTABLISHED", 50), row(0, "FAILED", 5)):
        state = alerts.add(state, r)
    state, out = alerts.evaluate(state, W + 1, rules)
    assert [(v["family"], v["failures"], v["attempts"], v["ratio"]) for _, v in out] == [
        ("call", 5, 5, 1.0)
    ]


def test_snapshot_round_trip_continues_identically() -> None:
    minutes = [QUIET] * 5 + [SPIKE] * 2 + [QUIET] * 4
    _, whole = run(minutes)
    state, first = run(minutes[:6])
    for status, count in SPIKE.items():  # minute 6 pending at snapshot time
        state = alerts.add(state, row(6, status, count))
    restored = alerts.DetectorState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    state2, rest = run([{}] * 7 + minutes[7:], state=restored)
    assert first + rest == whole
    assert state2.firing() == 0


def test_quiet_series_are_forgotten_once_the_baseline_decays() -> None:
    state, _ = run([QUIET])
    state, _ = alerts.evaluate(state, 200 * W, RULES)
    assert state.series == {}
