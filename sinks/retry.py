"""Bounded retry with exponential backoff for transient insert failures.

The driver does not retry inserts; this does, and only for ``TransientError``.
Sleeping is injected so tests run instantly and can assert the delays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sinks.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; delay n = base * multiplier**(n-1), capped."""

    max_attempts: int = 5
    base_delay_s: float = 0.2
    multiplier: float = 2.0
    max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or self.multiplier < 1:
            raise ValueError(f"invalid retry policy {self!r}")

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * self.multiplier ** (retry - 1)))


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    on_retry: Callable[[TransientError], None] = lambda _: None,
) -> T:
    """Call ``fn`` until it succeeds; retries only TransientError, at most
    ``policy.max_attempts`` calls in all, then re-raises the last TransientError.
    Any other exception propagates at once."""
    for retry in range(1, policy.max_attempts):
        try:
            return fn()
        except TransientError as exc:
            on_retry(exc)
            sleep(policy.delay_s(retry))
    return fn()
