"""Fewer Kafka records than envelopes, on a real broker: the HTTP ingest path, ``replay --kafka``
and the spool drainer pack envelopes into batch records per topic partition.

Each test counts the records in the family topics (read back with kcat) against the envelopes
put in (at most 1.5 records per envelope; the numbers seen are printed), checks that every
envelope arrived exactly once (the ingest test allows the documented at-least-once duplicates
only when the ingest spooled something), that per-key (and per-partition) order is publish
order, and that every record sits in the partition of its envelopes' keys.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from events.catalog import resolve
from events.envelope import Envelope, IdSource, decode, encode, make
from events.topics import input_topics
from ingest.kafka_batch import partition_of
from ingest.spool import DiskSpool
from tests.integration import kafka_helpers as kh
from tests.integration.kafka_ingest_helpers import Record, ingest_process, kcat_records, metric

pytestmark = pytest.mark.integration

PARTITIONS = 3  # what ``ingest_process`` creates the topics with
MAX_RECORDS_PER_ENVELOPE = 1.5


def _read(bootstrap: str, prefix: str) -> list[Record]:
    return [r for topic in input_topics(prefix) for r in kcat_records(bootstrap, topic)]


def _check_records(records: list[Record]) -> None:
    for record in records:
        assert record.headers == {"v": b"2", "count": str(len(record.envelopes)).encode()}
        assert partition_of(record.key, PARTITIONS) == record.partition
        for envelope in record.envelopes:
            assert partition_of(envelope["key"].encode(), PARTITIONS) == record.partition


def _per_partition(records: list[Record]) -> dict[tuple[str, int], list[str]]:
    """Envelope ids per topic partition, in offset order and record order."""
    out: dict[tuple[str, int], list[str]] = {}
    for record in records:
        out.setdefault((record.topic, record.partition), []).extend(
            e["id"] for e in record.envelopes
        )
    return out


def _ratio(records: list[Record], envelopes: int, what: str) -> None:
    ratio = len(records) / envelopes
    print(f"{what}: {envelopes} envelopes in {len(records)} records ({ratio:.3f} per envelope)")
    assert ratio <= MAX_RECORDS_PER_ENVELOPE, (len(records), envelopes)


# ---- ingest over HTTP ------------------------------------------------------------------------

SESSIONS = 48  # concurrent entities, each posting its own hooks one after the other
HOOKS_PER_SESSION = 40


def _hook(session: int, seq: int) -> tuple[str, dict[str, object]]:
    node = {"nodeId": "node-1", "sessionId": f"sess-{session}", "seq": seq}
    if session % 2:
        return "StreamStatusEvent", {**node, "mediaSessionId": f"ms-{session}", "status": "PLAY"}
    return "CallStatusEvent", {**node, "callId": f"call-{session}", "status": "RING"}


async def _load(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def session(index: int) -> None:
            for seq in range(HOOKS_PER_SESSION):
                method, body = _hook(index, seq)
                answer = await client.post(f"/wcs/{method}", json=body)
                assert answer.status_code == 200, answer.text

        await asyncio.gather(*(session(index) for index in range(SESSIONS)))


def test_ingest_packs_hooks_into_few_records(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    total = SESSIONS * HOOKS_PER_SESSION
    with ingest_process(kafka_bootstrap, topic_prefix, tmp_path / "data") as (url, process):
        asyncio.run(_load(url))
        spooled = metric(url, "wcs_kafka_spooled_total")
        produced_records = metric(url, "wcs_kafka_records_total")
        assert metric(url, "wcs_kafka_acked_total") + spooled >= total
    assert process.returncode == 0
    records = _read(kafka_bootstrap, topic_prefix)
    _check_records(records)
    envelopes = [e for r in records for e in r.envelopes]
    sent = Counter((e["key"], e["body"]["seq"]) for e in envelopes)
    want = {(_key(s), q) for s in range(SESSIONS) for q in range(HOOKS_PER_SESSION)}
    assert set(sent) == want  # every hook arrived
    duplicates = sum(sent.values()) - len(sent)
    assert duplicates <= spooled  # only the documented at-least-once copies (late acks)
    if not spooled:
        assert len(records) == produced_records  # nothing else wrote to these topics
    assert len({e["id"] for e in envelopes}) == len(sent)
    first_seen: dict[str, list[int]] = {}
    for envelope in envelopes:
        order = first_seen.setdefault(envelope["key"], [])
        if envelope["body"]["seq"] not in order:
            order.append(envelope["body"]["seq"])
    assert all(order == list(range(HOOKS_PER_SESSION)) for order in first_seen.values())
    _ratio(records, total, "ingest over HTTP")


def _key(session: int) -> str:
    method, body = _hook(session, 0)
    return str(body["mediaSessionId"] if method == "StreamStatusEvent" else body["callId"])


# ---- replay --kafka --------------------------------------------------------------------------


def test_replay_to_kafka_packs_the_file_in_order(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.ndjson"
    kh.cli("simulate", "--out", str(trace), "--seed", "11", "--scale", "1", "--minutes", "10")
    count = kh.publish_file(kafka_bootstrap, topic_prefix, trace, partitions=PARTITIONS)
    in_file = [decode(line) for line in trace.read_bytes().splitlines() if line.strip()]
    assert count == len(in_file) > 1000
    records = _read(kafka_bootstrap, topic_prefix)
    _check_records(records)
    got = _per_partition(records)
    want: dict[tuple[str, int], list[str]] = {}
    for envelope in in_file:
        where = (f"{topic_prefix}{envelope['family']}", _partition(envelope))
        want.setdefault(where, []).append(envelope["id"])
    assert got == want  # exactly once each, file order within every partition
    _ratio(records, count, "replay --kafka")


def _partition(envelope: Envelope) -> int:
    return partition_of(envelope["key"].encode(), PARTITIONS)


# ---- the spool drainer -----------------------------------------------------------------------


def _spool_envelopes(directory: Path, count: int) -> list[Envelope]:
    """What a stopped ingest left in its spool: ``count`` envelopes (the real spool code)."""
    ids = IdSource("spooled")
    envelopes = []
    for seq in range(count):
        method, body = _hook(seq % 30, seq)
        envelopes.append(make(resolve(method), body, 1_700_000_000_000 + seq, ids()))

    async def write() -> None:
        spool = DiskSpool(directory, 1 << 30)
        spool.open()
        written = [spool.append(encode(e)) for e in envelopes]
        await asyncio.gather(*written)
        await spool.close()

    asyncio.run(write())
    return envelopes


def test_a_spool_left_behind_is_drained_in_batch_records(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    spooled = _spool_envelopes(data / "kafka-spool", 3000)
    with ingest_process(kafka_bootstrap, topic_prefix, data) as (url, process):
        deadline = time.monotonic() + 60
        while metric(url, "wcs_kafka_drained_total") < len(spooled):
            assert time.monotonic() < deadline, "spool not drained within 60 s"
            time.sleep(0.2)
        assert metric(url, 'wcs_kafka_mode{mode="direct"}') == 1
    assert process.returncode == 0
    assert not list((data / "kafka-spool").glob("segment-*"))  # drained segments deleted
    records = _read(kafka_bootstrap, topic_prefix)
    _check_records(records)
    want: dict[tuple[str, int], list[str]] = {}
    for envelope in spooled:
        where = (f"{topic_prefix}{envelope['family']}", _partition(envelope))
        want.setdefault(where, []).append(envelope["id"])
    assert _per_partition(records) == want  # exactly once each, spool order per partition
    _ratio(records, len(spooled), "spool drainer")
