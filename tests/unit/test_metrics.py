"""Prometheus text of the hook counters, latency histogram and queue depth."""

from __future__ import annotations

import re

from ingest.metrics import LATENCY_BUCKETS, HookMetrics

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$')


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }


def test_counters_by_method_and_outcome() -> None:
    metrics = HookMetrics()
    for _ in range(3):
        metrics.count("StreamStatusEvent", "ok")
    metrics.count("StreamStatusEvent", "bad_json")
    metrics.count("_invalid", "bad_method")
    samples = _samples(metrics.render(queue_depth=7))
    assert samples['wcs_hooks_total{method="StreamStatusEvent",outcome="ok"}'] == 3
    assert samples['wcs_hooks_total{method="StreamStatusEvent",outcome="bad_json"}'] == 1
    assert samples['wcs_hooks_total{method="_invalid",outcome="bad_method"}'] == 1
    assert samples["wcs_ingest_queue_depth"] == 7


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    metrics = HookMetrics()
    for seconds in (0.00005, 0.001, 0.0011, 3.0):  # 0.001 lands in le="0.001"
        metrics.observe(seconds)
    samples = _samples(metrics.render(0))
    bucket = 'wcs_hook_latency_seconds_bucket{{le="{}"}}'
    assert samples[bucket.format("0.0001")] == 1
    assert samples[bucket.format("0.0005")] == 1
    assert samples[bucket.format("0.001")] == 2
    assert samples[bucket.format("0.0025")] == 3
    assert samples[bucket.format("1.0")] == 3
    assert samples[bucket.format("+Inf")] == 4
    assert samples["wcs_hook_latency_seconds_count"] == 4
    assert abs(samples["wcs_hook_latency_seconds_sum"] - 3.00215) < 1e-9
    assert len([k for k in samples if "_bucket" in k]) == len(LATENCY_BUCKETS) + 1


def test_exposition_format() -> None:
    metrics = HookMetrics()
    metrics.count('we"ird\\name\n', "ok")
    text = metrics.render(0)
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or SAMPLE.match(line), line
    assert 'method="we\\"ird\\\\name\\n"' in text
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    assert types == [
        ("wcs_hooks_total", "counter"),
        ("wcs_hook_latency_seconds", "histogram"),
        ("wcs_ingest_queue_depth", "gauge"),
    ]
