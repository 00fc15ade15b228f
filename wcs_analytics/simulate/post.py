"""POST a trace's hooks to a running service, the way WCS does (one keep-alive client).

This is an IO adapter: it uses the event loop clock to pace requests. The service stamps
its own ``received_at``, so only the truth's counts and dispositions carry over to an HTTP
run; time-derived values (durations, gaps, timeouts) hold for an envelope replay.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from wcs_analytics.simulate.model import Trace

if TYPE_CHECKING:  # imported by ``post``: ``simulate --out`` and ``--help`` do not wait for httpx
    import httpx

HEADERS = {
    "Content-Type": "application/json;charset=UTF-8",
    "Accept": "application/json, application/*+json",
    "User-Agent": "wcs-analytics-simulate",
}


@dataclass(frozen=True, slots=True)
class PostStats:
    """``statuses``: HTTP status -> count; ``errors``: transport exception name -> count;
    ``latency_ms``: p50/p90/p99/max over every request, answered or not."""

    sent: int
    elapsed_s: float
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


def percentiles(samples: list[float]) -> dict[str, float]:
    """Nearest-rank p50/p90/p99 and max; empty input gives zeros."""
    ordered = sorted(samples)
    if not ordered:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    last = len(ordered) - 1
    ranks = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
    return {name: ordered[min(last, int(q * len(ordered)))] for name, q in ranks.items()} | {
        "max": ordered[-1]
    }


def schedule(trace: Trace, rate: float | None, speed: float | None) -> list[float]:
    """Seconds after the start at which each hook is due: real time compressed by ``speed``,
    else evenly at ``rate`` per second, else all at once (bounded by the concurrency)."""
    if speed is not None:
        first = trace.hooks[0][0] if trace.hooks else 0
        return [(at - first) / 1000 / speed for at, _, _ in trace.hooks]
    if rate is not None:
        return [index / rate for index in range(len(trace.hooks))]
    return [0.0] * len(trace.hooks)


async def post(
    trace: Trace,
    base_url: str,
    rate: float | None = None,
    concurrency: int = 16,
    progress: Callable[[int, int], None] | None = None,
    *,
    speed: float | None = None,
    timeout_s: float = 15.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PostStats:
    """POST each raw hook body to ``{base_url}/wcs/{method}`` in trace order, at most
    ``concurrency`` in flight. Never raises for HTTP or transport errors (they are counted);
    ``progress(done, total)`` is called after each request."""
    if concurrency < 1 or (rate is not None and rate <= 0) or (speed is not None and speed <= 0):
        raise ValueError("concurrency, rate and speed must be positive")
    import httpx

    loop = asyncio.get_running_loop()
    due = schedule(trace, rate, speed)
    slots = asyncio.Semaphore(concurrency)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    total = len(trace.hooks)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def send(client: httpx.AsyncClient, method: str, body: dict[str, Any]) -> None:
        began = loop.time()
        try:
            response = await client.post(f"/wcs/{method}", content=orjson.dumps(body))
            statuses[response.status_code] += 1
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
        finally:
            latencies.append((loop.time() - began) * 1000)
            slots.release()
            if progress is not None:
                progress(len(latencies), total)

    start = loop.time()
    async with (
        httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=HEADERS,
            timeout=timeout_s,
            limits=limits,
            transport=transport,
        ) as client,
        asyncio.TaskGroup() as group,
    ):
        for (_, method, body), offset in zip(trace.hooks, due, strict=True):
            wait = start + offset - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            group.create_task(send(client, method, body))
    return PostStats(
        sent=total,
        elapsed_s=loop.time() - start,
        statuses=dict(sorted(statuses.items())),
        errors=dict(sorted(errors.items())),
        latency_ms=percentiles(latencies),
    )
