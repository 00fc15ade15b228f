"""The in-memory bus's overflow on a real filesystem: a spool that cannot be written loses
envelopes countably (drop) or refuses them (reject), and works again once writable.

The spool directory is replaced by a regular file (root ignores permission bits, so
``chmod`` cannot make a directory unwritable for the test)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events.bus import BusRejected, InMemoryBus
from events.catalog import resolve
from events.envelope import make
from ingest.drops import DropLog
from wcs_analytics.spool import OverflowSpool

pytestmark = pytest.mark.integration


def envelope(n: int):  # type: ignore[no-untyped-def]
    return make(resolve("connect"), {"nodeId": "n", "sessionId": f"s{n}"}, n, f"id-{n}")


async def overflow(spool: OverflowSpool, count: int) -> tuple[InMemoryBus, int]:
    bus = InMemoryBus(1, spool.append)
    refused = 0
    for n in range(count):
        try:
            bus.publish(envelope(n))
        except BusRejected:
            refused += 1
    return bus, refused


def test_unwritable_spool_drops_countably_then_recovers(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.write_bytes(b"not a directory")
    drops = DropLog()
    spool = OverflowSpool(directory, drops)
    bus, refused = asyncio.run(overflow(spool, 100))
    assert refused == 0 and bus.depth() == 1
    assert bus.overflowed == 99 and spool.written == 0
    assert drops.dropped["spool_write_failed"] == 99
    assert drops.health()["status"] == "degraded"

    directory.unlink()  # writable again: the next overflow is spooled, nothing torn
    asyncio.run(overflow(spool, 3))
    spool.close()
    assert spool.written == 2 and drops.dropped["spool_write_failed"] == 99
    (written,) = spool.files()
    assert [e["id"] for e in OverflowSpool.read(written)] == ["id-1", "id-2"]


def test_reject_policy_refuses_instead_of_dropping(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.write_bytes(b"")
    drops = DropLog()
    _bus, refused = asyncio.run(overflow(OverflowSpool(directory, drops, reject=True), 50))
    assert refused == 49
    assert drops.rejected["spool_write_failed"] == 49 and sum(drops.dropped.values()) == 0
