"""Delivery noise WCS produces: reordered and retried hooks.

Both mutate lifecycles in place and draw from the rng in a fixed order, so a trace stays a
pure function of its seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from wcs_analytics.simulate.config import REORDER_WINDOW_MS, RETRY_DELAY_MS
from wcs_analytics.simulate.lifecycle import Lifecycle, Step


def reorder(rng: random.Random, lifecycles: Iterable[Lifecycle], rate: float) -> int:
    """Swap the arrival times of adjacent hooks of one entity less than 50 ms apart, each
    eligible pair with probability ``rate`` (pairs never overlap); returns the swap count.

    Afterwards the earlier-in-lifecycle hook arrives later; ``steps`` keep lifecycle order.
    """
    swaps = 0
    for lc in lifecycles:
        index = 0
        while index + 1 < len(lc.steps):
            first, second = lc.steps[index], lc.steps[index + 1]
            if second.at - first.at < REORDER_WINDOW_MS and rng.random() < rate:
                first.at, second.at = second.at, first.at
                swaps += 1
                index += 2
            else:
                index += 1
    return swaps


def duplicate(rng: random.Random, lifecycles: Iterable[Lifecycle], rate: float) -> int:
    """Repeat each hook with probability ``rate`` as a retry arriving 3..1000 ms after it
    (same method and body); returns the retry count. Retries go to ``Lifecycle.retries``."""
    retries = 0
    for lc in lifecycles:
        for step in lc.steps:
            if rng.random() < rate:
                delay = rng.randint(*RETRY_DELAY_MS)
                lc.retries.append(Step(step.at + delay, step.method, step.body, step.role))
                retries += 1
    return retries
