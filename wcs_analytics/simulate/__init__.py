"""Realistic WCS hook traffic with known ground truth.

``generate(SimConfig)`` is pure and seeded; ``to_envelopes`` / ``write_ndjson`` turn a trace
into what ingest would publish (for ``replay``); ``post`` sends it to a running service.
See docs/simulate.md.
"""

from __future__ import annotations

from wcs_analytics.simulate.config import Hook, SimConfig
from wcs_analytics.simulate.model import Trace, generate
from wcs_analytics.simulate.output import (
    ndjson_lines,
    redact_secrets,
    to_envelopes,
    truth_path,
    write_ndjson,
)
from wcs_analytics.simulate.post import PostStats, post

__all__ = [
    "Hook",
    "PostStats",
    "SimConfig",
    "Trace",
    "generate",
    "ndjson_lines",
    "post",
    "redact_secrets",
    "to_envelopes",
    "truth_path",
    "write_ndjson",
]
