"""Envelopes not kept: counted per reason, degraded health, one log line per interval."""

from __future__ import annotations

import logging

import pytest

from ingest.drops import DEGRADED_FOR_S, DropLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_counts_per_reason_and_outcome() -> None:
    drops = DropLog(Clock())
    for _ in range(3):
        drops.note("spool_write_failed", "EACCES", rejected=False)
    drops.note("spool_full", "full", rejected=True)
    assert drops.dropped["spool_write_failed"] == 3 and drops.rejected["spool_full"] == 1
    text = drops.metrics()
    assert 'wcs_envelopes_dropped_total{reason="spool_write_failed"} 3' in text
    assert 'wcs_envelopes_rejected_total{reason="spool_full"} 1' in text
    assert 'wcs_envelopes_dropped_total{reason="publish_error"} 0' in text  # always exported


def test_health_is_degraded_while_losses_are_recent() -> None:
    clock = Clock()
    drops = DropLog(clock)
    assert drops.health() == {}
    drops.note("spool_full", "full", rejected=False)
    health = drops.health()
    assert health["status"] == "degraded" and health["envelopes_dropped"] == {"spool_full": 1}
    clock.now += DEGRADED_FOR_S
    assert "status" not in drops.health()
    assert drops.health()["envelopes_dropped"] == {"spool_full": 1}  # totals stay visible


def test_one_log_line_per_interval_not_per_envelope(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    drops = DropLog(clock, every_s=10)
    caplog.set_level(logging.ERROR, logger="ingest.drops")
    for n in range(5000):
        clock.now = 1000 + n * 0.001  # 5 s of drops
        drops.note("spool_write_failed", f"error {n}", rejected=False)
    assert len(caplog.records) == 1  # the first, at once
    drops.flush()  # the timer's job at the end of the interval (no event loop here)
    assert len(caplog.records) == 2
    assert "4999 dropped (answered 200): spool_write_failed" in caplog.records[1].getMessage()
    assert "error 4999" in caplog.records[1].getMessage()
    drops.flush()
    assert len(caplog.records) == 2  # nothing new, nothing logged
