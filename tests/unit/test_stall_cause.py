"""Which part a stall of ``run --processing process`` is blamed on, in the log."""

from __future__ import annotations

from wcs_analytics.process_store import stall_cause


def test_the_longer_wait_is_the_cause() -> None:
    assert stall_cause(False, 2.0, 0.5) == "the ClickHouse insert"
    behind = stall_cause(False, 0.0, 1.5)
    assert behind.startswith("the processing process") and "behind its input" in behind
    assert stall_cause(False, 0.0, 0.0) == "the ClickHouse insert"  # nothing waits: the default


def test_a_failed_processing_process_is_named_whatever_waits() -> None:
    assert stall_cause(True, 5.0, 0.0) == "the processing process (it failed)"
