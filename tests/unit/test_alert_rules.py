"""Alert rules (TOML), the embedded alert stage, webhook payloads and the Prometheus examples."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from helpers.envs import BASE, calls, checked, of

from events.tables import Row, check_row
from processors.alert_rules import ATTEMPT_STATUSES, DEFAULT_RULES, parse_rules
from processors.alert_stage import AlertStage, StatusTotals
from processors.config import ProcessorConfig
from processors.runtime import PartitionRuntime
from wcs_analytics.alert_webhooks import alertmanager_payload, payload, plain_payload

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
W = 60_000


def test_defaults_have_one_rule_per_family_with_outcome_attempts() -> None:
    assert {r.family: r.attempt_statuses for r in DEFAULT_RULES.rules} == ATTEMPT_STATUSES
    assert all(r.failure_statuses == ("FAILED",) for r in DEFAULT_RULES.rules)
    assert parse_rules({}) == DEFAULT_RULES


def test_example_file_spells_out_the_defaults() -> None:
    rules = parse_rules(tomllib.loads((DEPLOY / "alerts.toml").read_text()))
    by_name = {r.name: r for r in rules.rules}
    assert rules.window_ms == DEFAULT_RULES.window_ms
    assert rules.evaluation_delay_ms == DEFAULT_RULES.evaluation_delay_ms
    for default in DEFAULT_RULES.rules:
        assert by_name[default.name] == default
    assert by_name["stream_failed_spike_by_node"].by_node is True
    assert by_name["stream_failed_spike_by_node"].min_failures == 10


def test_defaults_section_applies_to_built_in_rules() -> None:
    rules = parse_rules({"defaults": {"min_failures": 8}, "detector": {"warmup_windows": 0}})
    assert {r.min_failures for r in rules.rules} == {8}
    assert rules.warmup_windows == 0


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rules": [{"name": "x", "family": "call", "min_failure": 3}]}, "unknown keys"),
        ({"rules": [{"name": "x", "family": "call", "min_failures": "5"}]}, "must be int"),
        ({"rules": [{"name": "x", "family": "subscription"}]}, "family must be"),
        ({"rules": [{"name": "x", "family": "call", "resolve_ratio": 0.5}]}, "must not exceed"),
        ({"rules": [{"name": "x", "family": "call", "ewma_alpha": 0}]}, "ewma_alpha"),
        ({"rules": [{"name": "x", "family": "call", "failure_statuses": ["X"]}]}, "non-empty"),
        ({"rules": [{"name": "x", "family": "call"}, {"name": "x", "family": "data"}]}, "dupl"),
        ({"rule": []}, "unknown sections"),
        ({"detector": {"window": 1}}, "unknown keys"),
    ],
)
def test_invalid_rules_name_the_problem(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules(doc)


def counts(ws: int, status: str, count: int, version: int = 1) -> Row:
    values = {"window_start": ws, "family": "call", "status": status, "app_key": "a",
              "node_id": "n", "count": count, "version": version}  # fmt: skip
    return "status_counts", values


def test_status_totals_add_only_the_increase_of_a_re_emitted_window() -> None:
    totals = StatusTotals()
    for _, values in (counts(0, "FAILED", 2), counts(0, "FAILED", 5, 2), counts(W, "FAILED", 1)):
        totals.add(values)
    totals.add(counts(0, "FAILED", 5, 3)[1])  # same count again
    assert totals.totals == {("call", "FAILED"): 6}


NO_WARMUP = parse_rules({"detector": {"warmup_windows": 0, "evaluation_delay_ms": 0}})


def test_alert_stage_evaluates_a_window_once_it_is_due() -> None:
    stage = AlertStage(NO_WARMUP)
    assert stage.next_due is None
    stage.accept([counts(0, "FAILED", 9), ("calls", {"call_id": "c"})])  # other tables ignored
    assert stage.next_due == W + 1
    assert stage.advance(W) == []
    (alert,) = stage.advance(W + 1)
    check_row(alert)
    assert alert[0] == "alerts" and alert[1]["failures"] == 9 and alert[1]["state"] == "firing"
    assert stage.status.totals == {("call", "FAILED"): 9}
    assert (stage.state.firing(), stage.alerts_emitted) == (1, 1)
    assert stage.next_due == 2 * W + 1 and stage.advance(W + 1) == []


def test_alert_stage_state_round_trips_through_json() -> None:
    stage = AlertStage(NO_WARMUP)
    stage.accept([counts(0, "FAILED", 9), counts(W, "FAILED", 1)])
    stage.advance(W + 1)
    restored = AlertStage(NO_WARMUP)
    restored.load(orjson.loads(orjson.dumps(stage.to_json())))
    assert restored.to_json() == stage.to_json()
    assert restored.next_due == stage.next_due
    later = 10 * W
    assert restored.advance(later) == stage.advance(later)
    assert restored.state.firing() == stage.state.firing() == 0  # resolved by quiet windows


@pytest.mark.parametrize(("warmup", "fired"), [(0, 1), (5, 0)])
def test_runtime_feeds_its_windows_to_the_stage(warmup: int, fired: int) -> None:
    """FAILED calls in one minute: the runtime emits the window once due, the stage evaluates
    it at its own due time (evaluation_delay_ms after the window) and its rows come out of
    the next flush."""
    rules = parse_rules({"detector": {"warmup_windows": warmup}})
    runtime = PartitionRuntime(ProcessorConfig(), AlertStage(rules))
    failed = [calls(f"c{i}")("CallStatusEvent", BASE + i * 1000, "FAILED") for i in range(6)]
    assert runtime.feed(failed) == []
    assert of(runtime.flush(windows=False), "alerts") == []
    runtime.advance(BASE + W + rules.evaluation_delay_ms)
    assert of(runtime.flush(windows=False), "alerts") == []
    runtime.advance(BASE + W + rules.evaluation_delay_ms + 1)
    alerts = of(checked(runtime.flush(windows=False)), "alerts")
    assert len(alerts) == fired
    assert all((a["failures"], a["attempts"], a["window_start"]) == (6, 6, BASE) for a in alerts)


ROW = {"alert_id": "abc", "rule": "call_failed_spike", "family": "call", "app_key": "app",
       "node_id": "*", "state": "resolved", "fired_at": 1_700_000_060_000,
       "resolved_at": 1_700_000_300_000, "window_start": 1_700_000_000_000, "failures": 30,
       "attempts": 50, "ratio": 0.6, "baseline": 1.25, "version": 2}  # fmt: skip


def test_alertmanager_payload() -> None:
    (alert,) = alertmanager_payload([ROW])
    assert alert["labels"] == {
        "alertname": "WcsFailedSpike", "rule": "call_failed_spike", "family": "call",
        "app_key": "app", "node_id": "*", "alert_id": "abc", "severity": "warning",
    }  # fmt: skip
    assert alert["startsAt"] == "2023-11-14T22:14:20.000Z"
    assert alert["endsAt"] == "2023-11-14T22:18:20.000Z"
    assert alert["annotations"]["summary"].startswith("30 FAILED of 50 call outcomes (60%)")
    (firing,) = alertmanager_payload([ROW | {"state": "firing", "resolved_at": None}])
    assert "endsAt" not in firing
    assert plain_payload([ROW]) == {"alerts": [ROW]}
    with pytest.raises(ValueError, match="format"):
        payload("xml", [ROW])


PROM = yaml.safe_load((DEPLOY / "prometheus" / "wcs-alerts.yml").read_text())
METRICS = {"wcs_status_total", "wcs_alerts_firing", "wcs_alert_webhook_total"}
LOSS_METRICS = {
    "wcs_envelopes_dropped_total",
    "wcs_envelopes_rejected_total",
    "wcs_http_connections_closed_total",
}


def _exprs() -> list[tuple[dict[str, Any], str]]:
    return [(rule, rule["expr"]) for g in PROM["groups"] for rule in g["rules"]]


def test_prometheus_rules_are_well_formed() -> None:
    records = {rule["record"] for rule, _ in _exprs() if "record" in rule}
    alerts = [rule for rule, _ in _exprs() if "alert" in rule]
    assert len(alerts) >= 3
    for rule, expr in _exprs():
        assert ("alert" in rule) != ("record" in rule), rule
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        names = set(re.findall(r"\b(wcs[:_][a-z_:0-9]+)", expr))
        known = METRICS | LOSS_METRICS | records
        assert names and names <= known, (expr, names - known)
        for label in re.findall(r"(\w+)\s*=~?\s*\"", expr):
            assert label in {"status", "family", "outcome", "reason"}, expr
    for rule in alerts:
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}


def test_prometheus_outcome_regex_matches_the_detector_attempts() -> None:
    (outcomes,) = [e for r, e in _exprs() if r.get("record") == "wcs:status_outcomes:rate5m"]
    listed = set(re.search(r'status=~"([^"]+)"', outcomes).group(1).split("|"))  # type: ignore[union-attr]
    assert listed == {s for statuses in ATTEMPT_STATUSES.values() for s in statuses}


def test_metrics_text_names_the_metrics_the_prometheus_rules_use() -> None:
    from wcs_analytics.alert_webhooks import WebhookSender
    from wcs_analytics.alerting import Alerting
    from wcs_analytics.engine_stats import EngineStats, with_stage

    stage = AlertStage(NO_WARMUP)
    stage.accept([counts(0, "FAILED", 9)])
    stage.advance(W + 1)
    webhook = WebhookSender("http://127.0.0.1:9/")  # nothing sent: no IO
    text = Alerting(webhook).metrics(with_stage(EngineStats(), stage))
    webhook.close()
    assert 'wcs_status_total{family="call",status="FAILED"} 9\n' in text
    assert "wcs_alerts_firing 1\n" in text and "wcs_alert_rows_total 1\n" in text
    assert 'wcs_alert_webhook_total{outcome="dropped"} 0\n' in text
    assert {m for m in METRICS if f"# TYPE {m} " in text} == METRICS


def test_loss_metrics_the_prometheus_rules_use_exist() -> None:
    from ingest.connections import ConnectionLimits
    from ingest.drops import DropLog
    from ingest.http_guard import HttpGuard

    text = DropLog().metrics() + HttpGuard(ConnectionLimits()).metrics()
    assert {m for m in LOSS_METRICS if f"# TYPE {m} counter" in text} == LOSS_METRICS
    used = {n for _, e in _exprs() for n in re.findall(r"\b(wcs_[a-z_]+)", e)}
    assert used >= LOSS_METRICS
