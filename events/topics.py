"""Kafka topic names: the same for ingest, workers, replay, deploy files and tests."""

from __future__ import annotations

from events.catalog import FAMILIES
from events.tables import TABLES


def family_topic(prefix: str, family: str) -> str:
    """Input topic of one family: ``wcs.call`` etc.; message key = entity key."""
    return f"{prefix}{family}"


def input_topics(prefix: str) -> list[str]:
    return [family_topic(prefix, family) for family in FAMILIES]


def row_topic(prefix: str, table: str) -> str:
    """Output topic of one ClickHouse table's rows (``wcs.rows.calls``), read by the sink agent."""
    return f"{prefix}rows.{table}"


def row_topics(prefix: str) -> list[str]:
    return [row_topic(prefix, table) for table in TABLES]


def dead_letter_topic(prefix: str) -> str:
    """Rows ClickHouse can never take, with the reason (``wcs.dead-letter``)."""
    return f"{prefix}dead-letter"


def alerts_topic(prefix: str) -> str:
    """FAILED-spike alert rows for other consumers (``wcs.alerts``; key = alert_id, value =
    the ``alerts`` row as JSON, times in epoch ms); the table gets them via ``rows.alerts``."""
    return f"{prefix}alerts"
