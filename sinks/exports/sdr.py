"""WCS stream detail record (SDR) lines, formatted like WCS writes them.

``start;mediaProvider;name;mediaSessionId;duration;disposition;info;type;subscribers;``

* ``start``: when the session started (``started_at``, else ``created_at`` for a session
  that failed before it started), ``yyyy-MM-dd HH:mm:ss`` in **UTC** (WCS writes server
  local time; run WCS in UTC to compare line for line).
* ``duration``: ``HH:mm:ss`` of ``lifetime_ms`` truncated to whole seconds; hours go past
  24 for sessions longer than a day (``26:03:07``).
* ``disposition``: the stream's ``final_status`` (UNPUBLISHED, STOPPED, FAILED); a session
  closed by timeout (no final status) is ``FAILED`` with info ``closed by timeout``.
* ``type``: PUBLISH or SUBSCRIBE; ``subscribers``: viewers of a PUBLISH line, 0 otherwise.

Fields never contain the separator: ``;`` becomes ``,`` and line breaks a space.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

TIMEOUT_INFO = "closed by timeout"


@dataclass(frozen=True, slots=True)
class StreamRecord:
    start_ms: int
    media_provider: str
    name: str
    media_session_id: str
    duration_ms: int
    final_status: str
    info: str
    publish: bool
    subscribers: int


def format_start(epoch_ms: int) -> str:
    """``yyyy-MM-dd HH:mm:ss`` (UTC), milliseconds dropped."""
    return datetime.fromtimestamp(epoch_ms // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(duration_ms: int) -> str:
    """``HH:mm:ss`` of whole seconds (truncated; negative counts as 0)."""
    seconds = max(0, duration_ms) // 1000
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _field(text: str) -> str:
    return text.replace(";", ",").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def sdr_line(record: StreamRecord) -> str:
    """One SDR line, with its trailing ``;`` and newline."""
    disposition = record.final_status or "FAILED"
    info = record.info if record.final_status or record.info else TIMEOUT_INFO
    fields = (
        format_start(record.start_ms),
        record.media_provider,
        record.name,
        record.media_session_id,
        format_duration(record.duration_ms),
        disposition,
        info,
        "PUBLISH" if record.publish else "SUBSCRIBE",
        str(record.subscribers if record.publish else 0),
    )
    return ";".join(_field(f) for f in fields) + ";\n"
