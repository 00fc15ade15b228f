"""Hand-made rows for the KPI view tests (tests/integration/test_kpi_views.py).

Builders fill every column of the contract (``events.tables``) and derive the
columns the processors derive (pdd, durations, lifetime) with docs/processing.md's
formulas, so each row is one a real pipeline could have written.
"""

from __future__ import annotations

from typing import Any

from events.tables import TABLES, Row, check_row

# 2023-11-14 22:14:00.000 UTC, a minute boundary; the fixed data stays inside 22:14-22:17
M0 = 1_700_000_040_000


def at(seconds: float, base: int = M0) -> int:
    """Epoch ms ``seconds`` after ``base``."""
    return base + round(seconds * 1000)


def row(table: str, **values: Any) -> Row:
    defaults = {
        name: (
            None
            if kind.startswith("Nullable")
            else False
            if kind == "Bool"
            else 0
            if "Int" in kind or "DateTime" in kind
            else ""
        )
        for name, kind in TABLES[table].columns
    }
    built = (table, defaults | values)
    check_row(built)
    return built


def _since(end: int | None, start: int | None) -> int | None:
    return None if end is None or start is None else max(0, end - start)


def call(
    call_id: str,
    version: int,
    created: int,
    *,
    app: str = "A",
    node: str = "n1",
    ringing: int | None = None,
    answered: int | None = None,
    ended: int | None = None,
    disposition: str,
    sip: int | None = None,
    info: str = "",
) -> Row:
    talk = None if ended is None else (_since(ended, answered) or 0)
    return row(
        "calls",
        call_id=call_id,
        app_key=app,
        node_id=node,
        created_at=created,
        ringing_at=ringing,
        answered_at=answered,
        ended_at=ended,
        last_event_at=ended or answered or ringing or created,
        disposition=disposition,
        pdd_ms=_since(ringing, created),
        duration_ms=_since(ended, created),
        talk_ms=talk,
        sip_status=sip,
        info=info,
        version=version,
    )


def stream(
    media_session_id: str,
    version: int,
    created: int,
    kind: str,
    *,
    app: str = "A",
    node: str = "n1",
    started: int | None = None,
    ended: int | None = None,
    final_status: str = "",
) -> Row:
    return row(
        "streams",
        media_session_id=media_session_id,
        app_key=app,
        node_id=node,
        kind=kind,
        published=kind == "publish",
        created_at=created,
        started_at=started,
        ended_at=ended,
        last_event_at=ended or started or created,
        lifetime_ms=_since(ended, started),
        final_status=final_status,
        version=version,
    )


def gap(media_session_id: str, version: int, start: int, end: int, deleted: bool = False) -> Row:
    return row(
        "keepalive_gaps",
        media_session_id=media_session_id,
        app_key="A",
        node_id="n1",
        name=f"name-{media_session_id}",
        gap_start=start,
        gap_end=end,
        gap_ms=end - start,
        is_deleted=int(deleted),
        version=version,
    )


def message(
    message_id: str,
    version: int,
    created: int,
    final_status: str,
    *,
    app: str = "A",
    imdn_required: bool = False,
    **times: int,
) -> Row:
    """``times``: sent_at, received_at, accepted_at, delivered_at, failed_at."""
    return row(
        "messages",
        message_id=message_id,
        app_key=app,
        node_id="n1",
        imdn_required=imdn_required,
        created_at=created,
        last_event_at=max([created, *times.values()]),
        final_status=final_status,
        version=version,
        **times,
    )
