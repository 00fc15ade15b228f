"""Wiring of FAILED-spike alerting for ``run`` and ``replay`` (docs/alerts.md).

The detector itself is a stage of the partition runtime (``processors.alert_stage``);
this builds the webhook sender from the settings (``alert_webhook_url``,
``alert_webhook_format``) and renders the Prometheus counters of both.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.metrics import label_value
from wcs_analytics.alert_webhooks import WebhookSender
from wcs_analytics.engine_stats import EngineStats
from wcs_analytics.settings import Settings


@dataclass
class Alerting:
    webhook: WebhookSender | None

    @classmethod
    def create(cls, settings: Settings) -> Alerting:
        webhook = None
        if settings.alert_webhook_url:
            webhook = WebhookSender(settings.alert_webhook_url, settings.alert_webhook_format)
        return cls(webhook)

    def close(self) -> None:
        if self.webhook is not None:
            self.webhook.close()

    def metrics(self, stats: EngineStats) -> str:
        """``wcs_status_total{family,status}``, alert and webhook counters (Prometheus text)."""
        lines = [
            "# HELP wcs_status_total entities reaching a status (status_counts, deduplicated)",
            "# TYPE wcs_status_total counter",
        ]
        for (family, status), n in sorted(stats.status_totals.items()):
            labels = f'family="{label_value(family)}",status="{label_value(status)}"'
            lines.append(f"wcs_status_total{{{labels}}} {n}")
        lines += [
            "# HELP wcs_alerts_firing FAILED-spike alerts currently firing",
            "# TYPE wcs_alerts_firing gauge",
            f"wcs_alerts_firing {stats.alerts_firing}",
            "# HELP wcs_alert_rows_total alert rows emitted (firing and resolved)",
            "# TYPE wcs_alert_rows_total counter",
            f"wcs_alert_rows_total {stats.alerts_emitted}",
        ]
        if self.webhook is not None:
            lines += ["# HELP wcs_alert_webhook_total webhook POSTs by outcome",
                      "# TYPE wcs_alert_webhook_total counter"]  # fmt: skip
            for outcome, n in sorted(self.webhook.metrics().items()):
                lines.append(f'wcs_alert_webhook_total{{outcome="{outcome}"}} {n}')
        return "\n".join(lines) + "\n"
