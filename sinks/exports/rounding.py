"""The A/B billing rule: first A seconds, then B-second increments, per call.

A call's talk time (ms) is billed as:

* 0 s when it lasted 0 ms (answered and hung up in the same millisecond);
* A s when it lasted more than 0 ms and at most A s (any started second counts);
* A + ceil((t - A) / B) * B s above A (t in seconds, fractional).

Rounding applies to each call on its own, never to a sum. ``billable_seconds``
(Python) and ``billable_sql`` (ClickHouse) implement the same rule; the
integration tests check they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RULE = re.compile(r"^(\d{1,5})/(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class Rounding:
    first_s: int
    step_s: int

    def __str__(self) -> str:
        return f"{self.first_s}/{self.step_s}"


def parse_rounding(text: str) -> Rounding:
    """``"60/6"`` -> Rounding(60, 6); ValueError unless both are integers >= 1."""
    match = _RULE.match(text.strip())
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"rounding must be A/B with integers A, B >= 1 (e.g. 60/6), got {text!r}")
    return Rounding(int(match[1]), int(match[2]))


def billable_seconds(talk_ms: int, rule: Rounding) -> int:
    """Billable seconds of one call that talked ``talk_ms`` ms (negative counts as 0)."""
    if talk_ms <= 0:
        return 0
    first_ms, step_ms = rule.first_s * 1000, rule.step_s * 1000
    if talk_ms <= first_ms:
        return rule.first_s
    steps = -(-(talk_ms - first_ms) // step_ms)  # ceiling division
    return rule.first_s + steps * rule.step_s


def billable_sql(talk_ms: str, rule: Rounding) -> str:
    """ClickHouse Int64 expression of ``billable_seconds`` over the Int64 SQL ``talk_ms``."""
    first_ms, step_ms, first = rule.first_s * 1000, rule.step_s * 1000, rule.first_s
    return (
        f"multiIf(({talk_ms}) <= 0, toInt64(0), ({talk_ms}) <= {first_ms}, toInt64({first}), "
        f"toInt64({first} + intDiv(({talk_ms}) - {first_ms} + {step_ms - 1}, {step_ms})"
        f" * {rule.step_s}))"
    )
