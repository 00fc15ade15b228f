"""Garbage-collector settings for the long-lived stream processes (run, replay, worker).

Processing allocates many short-lived objects and keeps a large, stable set of session
states: with the default thresholds (700, 10, 10) the collector walks that stable set over
and over. After start-up the objects alive (modules, settings, restored states) are moved
out of its sight (``gc.freeze``) and generation 0 is collected less often; reference
counting still frees almost everything at once (no cycles are created per event).
"""

from __future__ import annotations

import gc
from typing import Final

THRESHOLDS: Final = (50_000, 20, 100)


def tune() -> None:
    """Call once start-up is done, before the input loop."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
