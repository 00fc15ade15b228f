"""Counters of the Kafka bus and their Prometheus text (appended to the ingest /metrics)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class KafkaStats:
    produced: int = 0  # envelopes queued in the producer (direct and drained)
    records: int = 0  # Kafka records (batches of envelopes) queued in the producer
    acked: int = 0  # direct envelopes whose record the broker acknowledged
    spooled: int = 0  # envelopes written to the disk spool
    drained: int = 0  # spooled envelopes re-published and acknowledged
    spool_full: int = 0  # envelopes the full spool could not take (dropped or rejected)
    producer_errors: int = 0  # failed sends and deliveries (the envelopes were spooled)


def _metric(kind: str, name: str, help_text: str, samples: list[tuple[str, float]]) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def render(
    stats: KafkaStats, mode: str, spool_bytes: int, spool_segments: int, full_policy: str
) -> str:
    counters = (
        ("wcs_kafka_produced_total", "envelopes queued in the Kafka producer", stats.produced),
        (
            "wcs_kafka_records_total",
            "Kafka records (batches of envelopes) queued in the producer",
            stats.records,
        ),
        (
            "wcs_kafka_acked_total",
            "envelopes the broker acknowledged on the direct path",
            stats.acked,
        ),
        ("wcs_kafka_spooled_total", "envelopes written to the disk spool", stats.spooled),
        ("wcs_kafka_drained_total", "spooled envelopes re-published to Kafka", stats.drained),
        ("wcs_kafka_producer_errors_total", "failed Kafka sends/deliveries", stats.producer_errors),
    )
    parts = [_metric("counter", name, text, [("", value)]) for name, text, value in counters]
    parts.append(
        _metric(
            "counter",
            "wcs_kafka_spool_full_total",
            "envelopes the full spool could not take, by policy (drop or reject)",
            [(f'{{policy="{full_policy}"}}', stats.spool_full)],
        )
    )
    parts.append(_metric("gauge", "wcs_kafka_spool_bytes", "disk spool size", [("", spool_bytes)]))
    parts.append(
        _metric("gauge", "wcs_kafka_spool_segments", "disk spool files", [("", spool_segments)])
    )
    parts.append(
        _metric(
            "gauge",
            "wcs_kafka_mode",
            "1 for the current mode: direct sends or spooling (Kafka slow/down, or draining)",
            [(f'{{mode="{m}"}}', int(m == mode)) for m in ("direct", "spooling")],
        )
    )
    return "".join(parts)
