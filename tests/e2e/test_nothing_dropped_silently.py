"""With the bus full and the overflow spool unwritable, every answered hook is either stored
or counted as dropped (drop policy), or refused with 503 (reject policy); /health says
degraded; the log gets a line per interval, not a traceback per envelope."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.service import Service, query

pytestmark = pytest.mark.e2e

CONNECTIONS, ROUNDS = 200, 10
HOOKS = CONNECTIONS * ROUNDS


def request(n: int) -> bytes:
    body = orjson.dumps({"nodeId": "n1", "appKey": "drop", "sessionId": f"s{n}", "callId": f"c{n}"})
    head = b"POST /wcs/CallStatusEvent HTTP/1.1\r\nHost: wcs\r\nContent-Type: application/json"
    return head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body


async def status_of(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert length is not None, head
    await reader.readexactly(int(length.group(1)))
    return int(head.split(b" ", 2)[1])


async def post_all(port: int) -> dict[int, int]:
    """Bursts: one hook on each of 200 open connections at once (as WCS's thread pool does),
    so the server publishes many before its processing task runs: the tiny bus overflows."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONNECTIONS)]
    statuses: dict[int, int] = {}
    for burst in range(ROUNDS):
        for n, (_reader, writer) in enumerate(conns):
            writer.write(request(burst * CONNECTIONS + n))
        for reader, _writer in conns:
            status = await asyncio.wait_for(status_of(reader), 30)
            statuses[status] = statuses.get(status, 0) + 1
    for _reader, writer in conns:
        writer.close()
    return statuses


def sample(metrics: str, name: str) -> int:
    found = re.search(rf"^{re.escape(name)} (\d+)", metrics, re.MULTILINE)
    assert found is not None, name
    return int(found.group(1))


@pytest.mark.parametrize("policy", ["drop", "reject"])
def test_unkept_envelopes_are_counted_not_hidden(
    policy: str, tmp_path: Path, service_factory: list[Service]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "spool").write_bytes(b"")  # the spool cannot be created: every overflow fails
    svc = Service(data, args=("--queue-size", "1", "--spool-full", policy))
    service_factory.append(svc.start())
    statuses = asyncio.run(post_all(svc.port))
    metrics = httpx.get(f"{svc.url}/metrics").text
    health = httpx.get(f"{svc.url}/health").json()
    assert svc.stop() == 0

    stored = query(data, "SELECT count() AS n FROM events")[0]["n"]
    dropped = sample(metrics, 'wcs_envelopes_dropped_total{reason="spool_write_failed"}')
    rejected = sample(metrics, 'wcs_envelopes_rejected_total{reason="spool_write_failed"}')
    overflowed = sample(metrics, "wcs_bus_overflow_total")
    assert sum(statuses.values()) == HOOKS
    assert overflowed == dropped + rejected > 0, statuses
    assert sample(metrics, "wcs_overflow_spooled_total") == 0
    if policy == "drop":
        assert statuses == {200: HOOKS}
        assert stored + dropped == HOOKS and rejected == 0
    else:
        assert statuses.get(503, 0) == rejected > 0
        assert stored == statuses[200] and dropped == 0
    assert health["status"] == "degraded"
    print(f"{policy}: answers {statuses}, stored {stored}, dropped {dropped}, rejected {rejected}")
    log = svc.log()
    assert "Traceback" not in log
    assert 1 <= log.count("envelopes not kept") <= 4, log[-2000:]
