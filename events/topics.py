"""Kafka topic names: the same for ingest, workers, replay, deploy files and tests."""

from __future__ import annotations

from events.catalog import FAMILIES


def family_topic(prefix: str, family: str) -> str:
    """Input topic of one family: ``wcs.call`` etc.; message key = entity key."""
    return f"{prefix}{family}"


def input_topics(prefix: str) -> list[str]:
    return [family_topic(prefix, family) for family in FAMILIES]


def dead_letter_topic(prefix: str) -> str:
    """Input records the workers cannot process, with the reason (``wcs.dead-letter``)."""
    return f"{prefix}dead-letter"


def alerts_topic(prefix: str) -> str:
    """FAILED-spike alert rows for other consumers (``wcs.alerts``; key = alert_id, value =
    the ``alerts`` row as JSON, times in epoch ms), produced by the worker group's leader."""
    return f"{prefix}alerts"
