"""Connections are a bounded resource: slow and idle clients cannot starve WCS's hooks.

The real ``run`` service with WCS HMAC signing on. 2,000 clients dribble header lines
(one line a second, never finishing) while signed hooks keep arriving: every dribbler is
closed within 30 s (the header deadline is 10 s) and the hooks keep p99 < 1 s. Above the
connection cap minus the reserve, the oldest idle connections are closed first and a signed
hook is still answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.service import Service

pytestmark = pytest.mark.e2e

SECRET = "slow-clients-secret"
SLOW = 2_000
TOKEN = "slow-clients-read-token"
READ = {"Authorization": f"Bearer {TOKEN}"}


def signed_hook(n: int) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps({"nodeId": "n1", "appKey": "slow", "sessionId": f"s{n}", "status": "OK"})
    mac = hmac.new(SECRET.encode(), raw, hashlib.md5).hexdigest()
    return raw, {"Authorization": f"WCS {mac}", "Content-Type": "application/json"}


async def dribble(port: int, closed_after: list[float], stop: asyncio.Event) -> None:
    """Send a request line and then one header line a second until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"POST /wcs/connect HTTP/1.1\r\nHost: wcs\r\n")
    line = 0
    try:
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(reader.read(1024), 1.0)
                if data == b"":
                    break
            except TimeoutError:
                line += 1
                writer.write(b"X-Drip-%d: y\r\n" % line)
    except (ConnectionError, OSError):
        pass
    closed_after.append(time.monotonic() - started)
    writer.close()


async def hooks(url: str, until: asyncio.Event, latencies: list[float], statuses: list[int]):
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        n = 0
        while not until.is_set():
            raw, headers = signed_hook(n)
            began = time.monotonic()
            answer = await client.post("/wcs/StreamStatusEvent", content=raw, headers=headers)
            latencies.append(time.monotonic() - began)
            statuses.append(answer.status_code)
            n += 1
            await asyncio.sleep(0.05)


async def flood(svc: Service) -> tuple[list[float], list[float], list[int]]:
    closed_after: list[float] = []
    latencies: list[float] = []
    statuses: list[int] = []
    stop, done = asyncio.Event(), asyncio.Event()
    sender = asyncio.create_task(hooks(svc.url, done, latencies, statuses))
    slow = []
    for batch in range(SLOW // 200):  # 200 at a time: stay within the listen backlog
        slow += [asyncio.create_task(dribble(svc.port, closed_after, stop)) for _ in range(200)]
        await asyncio.sleep(0.1 if batch else 0.5)
    try:
        await asyncio.wait_for(asyncio.gather(*slow), 40)
    finally:
        stop.set()
        done.set()
        await sender
    return closed_after, latencies, statuses


def test_dribbling_clients_are_closed_while_signed_hooks_stay_fast(
    tmp_path: Path, service_factory: list[Service]
) -> None:
    svc = Service(tmp_path / "data", args=("--hmac-secret", SECRET, "--read-token", TOKEN))
    service_factory.append(svc.start())
    started = time.monotonic()
    closed_after, latencies, statuses = asyncio.run(flood(svc))
    elapsed = time.monotonic() - started

    assert len(closed_after) == SLOW
    assert max(closed_after) < 30, max(closed_after)
    assert statuses and set(statuses) == {200}
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    assert p99 < 1.0, p99
    metrics = httpx.get(f"{svc.url}/metrics", headers=READ).text
    timed_out = re.search(r'reason="header_timeout"} (\d+)', metrics)
    assert timed_out is not None and int(timed_out.group(1)) >= SLOW
    assert svc.stop() == 0
    log = svc.log()
    assert 1 <= log.count("HTTP connections (header_timeout") <= elapsed / 10 + 2  # per interval
    print(
        f"{SLOW} dribblers closed after {min(closed_after):.1f}-{max(closed_after):.1f}s; "
        f"{len(latencies)} signed hooks p50 {latencies[len(latencies) // 2] * 1000:.1f} ms "
        f"p99 {p99 * 1000:.1f} ms max {latencies[-1] * 1000:.1f} ms"
    )


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def idle_connections(port: int, count: int) -> list[Conn]:
    return [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]


async def is_closed(conn: Conn) -> bool:
    """Whether the server closed it (then closed here too)."""
    reader, writer = conn
    try:
        closed = await asyncio.wait_for(reader.read(1), 0.05) == b""
    except TimeoutError:
        closed = False
    except (ConnectionError, OSError):
        closed = True
    writer.close()
    return closed


async def cap_scenario(svc: Service) -> tuple[list[bool], list[bool], int, str]:
    """300 idle connections, the first 150 older, against a soft cap of 300 - 100."""
    older = await idle_connections(svc.port, 150)
    await asyncio.sleep(0.3)
    newer = await idle_connections(svc.port, 150)
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
        raw, headers = signed_hook(1)
        status = (await client.post("/wcs/connect", content=raw, headers=headers)).status_code
        metrics = (await client.get("/metrics", headers=READ)).text
    await asyncio.sleep(0.3)
    return (
        [await is_closed(r) for r in older],
        [await is_closed(r) for r in newer],
        status,
        metrics,
    )


def test_above_the_cap_the_oldest_idle_connections_are_shed(
    tmp_path: Path, service_factory: list[Service]
) -> None:
    args = ("--hmac-secret", SECRET, "--read-token", TOKEN, "--max-connections", "300")
    args += ("--connection-reserve", "100")
    svc = Service(tmp_path / "data", args=(*args, "--header-timeout-ms", "60000"))
    service_factory.append(svc.start())
    older, newer, status, metrics = asyncio.run(cap_scenario(svc))
    assert status == 200
    # 300 idle + the hook's + the metrics' connections against 300 - 100: the oldest go first
    assert all(older[:100]) and not any(older[110:]), (older.count(True), metrics)
    assert not any(newer)
    shed = re.search(r'reason="shed"} (\d+)', metrics)
    assert shed is not None and 100 <= int(shed.group(1)) <= 110, metrics
    assert "wcs_http_connections_max 300" in metrics
    assert svc.stop() == 0
