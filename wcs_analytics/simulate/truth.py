"""Ground truth of a trace: the final rows a correct pipeline produces from its envelopes.

Computed from the generated lifecycles (what each entity was made to do, and when each of
its hooks finally arrived), independently of ``processors``. Shared semantics:

* time = arrival (``received_at``); every "first X" is the smallest arrival among the
  entity's hooks with status X. Retries arrive later than their original, so they never
  move a "first"; reorders (< 50 ms swaps) can, and the truth follows the arrivals;
* statuses come from the ``status`` field of any hook of the entity (direct hooks such as
  ``publishStream`` carry PENDING, ``playHLS`` NEW, keep-alives PUBLISHING/PLAYING);
* the trace ends (``trace_end``) before any call set-up (5 min) or idle (12 h) timeout and
  after every silent stream's keep-alive timeout (3 intervals), so open calls are
  IN_PROGRESS (or ANSWERED with no end), open connections have no end, silent streams are
  closed by timeout;
* windows are ``window_ms`` (one minute) wide, aligned to the epoch.

Row details: ``truth_media`` (calls, streams, gaps), ``truth_sessions`` (connections,
messages, data), ``truth_counts`` (status counts, message rates).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from wcs_analytics.simulate.config import CALL_IDLE_TIMEOUT_MS, CALL_SETUP_TIMEOUT_MS, SimConfig
from wcs_analytics.simulate.lifecycle import Lifecycle
from wcs_analytics.simulate.truth_counts import message_rates, status_counts
from wcs_analytics.simulate.truth_media import call_row, gap_rows, stream_row
from wcs_analytics.simulate.truth_sessions import connection_row, data_row, message_row

WINDOW_MS = 60_000


def _of(lifecycles: Sequence[Lifecycle], *kinds: str) -> list[Lifecycle]:
    return sorted((lc for lc in lifecycles if lc.kind in kinds), key=lambda lc: lc.key)


def build_truth(
    lifecycles: Sequence[Lifecycle], cfg: SimConfig, trace_end: int, noise: dict[str, int]
) -> dict[str, Any]:
    """JSON-ready truth; lists are sorted by entity id (aggregates by their key)."""
    calls = [call_row(lc) for lc in _of(lifecycles, "call")]
    streams = [stream_row(lc) for lc in _of(lifecycles, "publisher", "viewer")]
    gaps = [g for lc in _of(lifecycles, "publisher", "viewer") for g in gap_rows(lc, cfg)]
    return {
        "params": {
            "seed": cfg.seed,
            "trace_end": trace_end,
            "window_ms": WINDOW_MS,
            "keepalive_interval_ms": cfg.keepalive_interval_ms,
            "keepalive_gap_threshold_ms": cfg.keepalive_gap_threshold_ms,
            "keepalive_timeout_ms": cfg.keepalive_timeout_ms,
            "call_setup_timeout_ms": CALL_SETUP_TIMEOUT_MS,
            "call_idle_timeout_ms": CALL_IDLE_TIMEOUT_MS,
        },
        "summary": {
            **noise,
            "dispositions": dict(sorted(Counter(c["disposition"] for c in calls).items())),
            "stream_closed_by": dict(sorted(Counter(s["closed_by"] for s in streams).items())),
            "keepalive_gaps": len(gaps),
        },
        "calls": calls,
        "streams": streams,
        "keepalive_gaps": gaps,
        "connections": [connection_row(lc) for lc in _of(lifecycles, "connection")],
        "messages": [message_row(lc) for lc in _of(lifecycles, "message")],
        "data": [data_row(lc) for lc in _of(lifecycles, "data")],
        "status_counts": status_counts(lifecycles, WINDOW_MS),
        "message_rates": message_rates(lifecycles, WINDOW_MS),
    }
