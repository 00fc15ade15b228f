"""Wiring of FAILED-spike alerting for ``run`` and ``replay`` (docs/alerts.md).

``Alerting.create`` builds the detector's sink wrapper from the settings
(``alert_rules``, ``alert_webhook_url``, ``alert_webhook_format``); ``metrics``
renders its Prometheus counters; ``close`` drains the webhook queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ingest.metrics import _label
from processors.alert_rules import load_rules
from processors.alert_stage import AlertingSink
from processors.embedded import RowSink
from wcs_analytics.alert_webhooks import WebhookSender
from wcs_analytics.settings import Settings

SNAPSHOT = "alerts.snapshot"


@dataclass
class Alerting:
    sink: AlertingSink
    webhook: WebhookSender | None

    @classmethod
    def create(cls, settings: Settings, inner: RowSink, now: Callable[[], int | None]) -> Alerting:
        """Raises OSError/ValueError for an unreadable or invalid rules file."""
        rules = load_rules(settings.alert_rules)
        webhook = None
        if settings.alert_webhook_url:
            webhook = WebhookSender(settings.alert_webhook_url, settings.alert_webhook_format)
        notify = webhook.send if webhook is not None else None
        sink = AlertingSink(inner, rules, now, notify, settings.data_dir / SNAPSHOT)
        return cls(sink, webhook)

    def close(self) -> None:
        if self.webhook is not None:
            self.webhook.close()

    def metrics(self) -> str:
        """``wcs_status_total{family,status}``, alert and webhook counters (Prometheus text)."""
        lines = [
            "# HELP wcs_status_total entities reaching a status (status_counts, deduplicated)",
            "# TYPE wcs_status_total counter",
        ]
        for (family, status), n in sorted(self.sink.status.totals.items()):
            lines.append(
                f'wcs_status_total{{family="{_label(family)}",status="{_label(status)}"}} {n}'
            )
        state = self.sink.state
        lines += [
            "# HELP wcs_alerts_firing FAILED-spike alerts currently firing",
            "# TYPE wcs_alerts_firing gauge",
            f"wcs_alerts_firing {state.firing()}",
            "# HELP wcs_alert_rows_total alert rows emitted (firing and resolved)",
            "# TYPE wcs_alert_rows_total counter",
            f"wcs_alert_rows_total {self.sink.alerts_emitted}",
        ]
        if self.webhook is not None:
            lines += ["# HELP wcs_alert_webhook_total webhook POSTs by outcome",
                      "# TYPE wcs_alert_webhook_total counter"]  # fmt: skip
            for outcome, n in sorted(self.webhook.metrics().items()):
                lines.append(f'wcs_alert_webhook_total{{outcome="{outcome}"}} {n}')
        return "\n".join(lines) + "\n"
