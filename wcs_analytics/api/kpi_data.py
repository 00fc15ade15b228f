"""Run the dashboard queries on a client: JSON-ready rows (blocking; call via ReadAccess).

Alert markers come from ``{db}.alerts`` when that table exists. Its columns are
discovered from ``system.columns`` and only known names are used, so a missing table,
an older layout or a read error means "no markers", never a failed dashboard.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Final

from wcs_analytics.api import kpi_sql
from wcs_analytics.api.kpi_sql import Window

log = logging.getLogger(__name__)

# the alert's time, in order of preference; extra columns shown on the marker if present
_ALERT_TIMES: Final = ("fired_at", "started_at", "opened_at", "window_start", "created_at", "at")
_ALERT_END: Final = ("resolved_at", "ended_at")
_ALERT_LABELS: Final = ("family", "app_key", "node_id", "state", "status", "severity", "rule")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # 0/0 ratios: JSON has no NaN
    if isinstance(value, int | float | str | list) or value is None:
        return value
    return str(value)


def rows(client: Any, template: str, database: str, window: Window) -> list[dict[str, Any]]:
    """Rows of a ``kpi_sql`` query, values bound as parameters."""
    result = client.query(kpi_sql.sql(template, database), parameters=window.params())
    return [{k: _json_value(v) for k, v in row.items()} for row in result.named_results()]


def _ms(column: str, kind: str) -> str:
    """Epoch ms of a time column, whatever its type (DateTime, DateTime64, Int ms)."""
    if "Int" in kind:
        return f"toInt64({column})"
    return f"toUnixTimestamp64Milli(toDateTime64({column}, 3))"


def _alert_query(database: str, columns: dict[str, str], engine: str) -> str | None:
    time_col = next((c for c in _ALERT_TIMES if c in columns), None)
    if time_col is None:
        return None
    t = _ms(time_col, columns[time_col])
    select = [f"{t} AS t"]
    end_col = next((c for c in _ALERT_END if c in columns), None)
    if end_col is not None:
        select.append(f"{_ms(end_col, columns[end_col])} AS end_t")
    select += [f"toString({c}) AS {c}" for c in _ALERT_LABELS if c in columns]
    where = [f"{t} >= {{from_ms:Int64}}", f"{t} < {{to_ms:Int64}}"]
    if "app_key" in columns:
        where.append("({app:String} = '' OR app_key = {app:String})")
    if "node_id" in columns:
        where.append("({node:String} = '' OR node_id IN ({node:String}, '', '*'))")
    final = " FINAL" if "Replacing" in engine or "Collapsing" in engine else ""
    return (
        f"SELECT {', '.join(select)} FROM {database}.alerts{final} "
        f"WHERE {' AND '.join(where)} ORDER BY t LIMIT 500"
    )


def alerts(client: Any, database: str, window: Window) -> list[dict[str, Any]]:
    """Alert markers in the window; [] when there is no usable ``alerts`` table."""
    found = client.query(
        "SELECT c.name, c.type, t.engine FROM system.columns AS c "
        "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = {db:String} AND c.table = 'alerts'",
        parameters={"db": database},
    ).result_rows
    if not found:
        return []
    query = _alert_query(database, {name: kind for name, kind, _ in found}, found[0][2])
    if query is None:
        log.warning("%s.alerts has no known time column: no alert markers", database)
        return []
    try:
        return rows(client, query, database, window)
    except Exception as exc:  # an alerts layout we do not know must not break the dashboard
        log.warning("cannot read %s.alerts for markers: %s", database, exc)
        return []
