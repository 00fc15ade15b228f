"""Batching policy and partitioner of the Kafka ingest (ingest.kafka_batch): pure, no broker."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from events.records import batch_bytes
from ingest import kafka_batch
from ingest.kafka_batch import KEY_HASHES, Batch, Batcher, BatchLimits, pack, partition_of

# ---- partitioner -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "partition"),
    # the Java client's DefaultPartitioner on 1000 partitions (kafka-python's compatibility table)
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partition_matches_the_java_client(key: bytes, partition: int) -> None:
    assert partition_of(key, 1000) == partition


def test_partition_matches_aiokafkas_default_partitioner() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        key = rng.randbytes(rng.randrange(0, 48))
        count = rng.randrange(1, 64)
        everything = list(range(count))
        assert partition_of(key, count) == DefaultPartitioner()(key, everything, everything)


def test_key_hashes_are_cached_within_a_bound() -> None:
    """aiokafka's murmur2 is pure Python: a key's hash is kept, for at most KEY_HASHES keys, and a
    key seen again (in any partition count) gives the partition it gave uncached."""
    kafka_batch._positive_murmur2.cache_clear()
    keys = [b"key-%d" % n for n in range(KEY_HASHES + 100)]
    first = [partition_of(key, 12) for key in keys]
    info = kafka_batch._positive_murmur2.cache_info()
    assert info.currsize == KEY_HASHES and info.misses == len(keys)
    again = [partition_of(key, 12) for key in reversed(keys)][::-1]
    assert again == first == [DefaultPartitioner()(k, list(range(12)), []) for k in keys]
    assert kafka_batch._positive_murmur2.cache_info().hits >= KEY_HASHES - 100


def test_partition_of_a_uuid_key_is_in_range_and_stable() -> None:
    key = b"4f9b1c60-5a3e-11ee-8c99-0242ac120002"
    assert {partition_of(key, 8) for _ in range(3)} == {partition_of(key, 8)}
    assert all(0 <= partition_of(bytes([n]) * 5, 3) < 3 for n in range(256))


# ---- batching policy ---------------------------------------------------------------------------

LIMITS = BatchLimits(linger_s=0.005, max_envelopes=3, max_bytes=1000)


def _values(batches: list[Batch[int]]) -> list[list[bytes]]:
    return [b.values for b in batches]


def test_a_batch_closes_at_max_envelopes() -> None:
    batcher: Batcher[int] = Batcher(LIMITS)
    assert batcher.add("t", 0, b"k1", b"a", 1, 0.0) == ()
    assert batcher.add("t", 0, b"k2", b"b", 2, 0.0) == ()
    closed = batcher.add("t", 0, b"k3", b"c", 3, 0.0)
    assert _values(list(closed)) == [[b"a", b"b", b"c"]]
    assert closed[0].tokens == [1, 2, 3] and closed[0].key == b"k1"
    assert batcher.pending == 0 and batcher.next_due() is None


def test_a_batch_closes_before_the_envelope_that_would_not_fit() -> None:
    limits = BatchLimits(linger_s=1.0, max_envelopes=100, max_bytes=batch_bytes(10 + 10, 2))
    batcher: Batcher[int] = Batcher(limits)
    assert batcher.add("t", 0, b"k", b"x" * 10, 1, 0.0) == ()
    closed = batcher.add("t", 0, b"k", b"y" * 11, 2, 0.0)  # one byte too many
    assert _values(list(closed)) == [[b"x" * 10]]
    assert closed[0].size == batch_bytes(10, 1)
    (rest,) = batcher.drain()
    assert rest.values == [b"y" * 11] and rest.size == batch_bytes(11, 1)


def test_an_exact_fit_closes_the_batch_at_once() -> None:
    limits = BatchLimits(linger_s=1.0, max_envelopes=100, max_bytes=batch_bytes(10 + 10, 2))
    batcher: Batcher[int] = Batcher(limits)
    batcher.add("t", 0, b"k", b"x" * 10, 1, 0.0)
    closed = batcher.add("t", 0, b"k", b"y" * 10, 2, 0.0)
    assert _values(list(closed)) == [[b"x" * 10, b"y" * 10]]
    assert closed[0].size == limits.max_bytes


def test_an_envelope_larger_than_the_bound_goes_alone() -> None:
    batcher: Batcher[int] = Batcher(LIMITS)
    batcher.add("t", 0, b"k", b"small", 1, 0.0)
    closed = batcher.add("t", 0, b"k", b"B" * 5000, 2, 0.0)
    assert _values(list(closed)) == [[b"small"], [b"B" * 5000]]
    assert batcher.pending == 0


def test_partitions_and_topics_batch_separately() -> None:
    batcher: Batcher[int] = Batcher(LIMITS)
    batcher.add("t", 0, b"a", b"1", 1, 0.0)
    batcher.add("t", 1, b"b", b"2", 2, 0.001)
    batcher.add("u", 0, b"c", b"3", 3, 0.002)
    batcher.add("t", 0, b"a", b"4", 4, 0.003)
    assert batcher.pending == 4
    drained = batcher.drain()
    assert [(b.topic, b.partition, b.values) for b in drained] == [
        ("t", 0, [b"1", b"4"]),
        ("t", 1, [b"2"]),
        ("u", 0, [b"3"]),
    ]


@pytest.mark.parametrize(
    ("now", "due"), [(0.0049, []), (0.005, [0]), (0.0059, [0]), (0.006, [0, 1]), (9.0, [0, 1, 2])]
)
def test_linger_from_the_first_envelope(now: float, due: list[int]) -> None:
    batcher: Batcher[int] = Batcher(LIMITS)
    for partition, opened in enumerate((0.0, 0.001, 0.002)):
        batcher.add("t", partition, b"k", b"v", partition, opened)
        batcher.add("t", partition, b"k", b"w", partition, opened + 0.004)  # does not extend it
    assert [b.partition for b in batcher.due(now)] == due
    left = [p for p in range(3) if p not in due]
    assert [b.partition for b in batcher.drain()] == left


def test_next_due_follows_the_oldest_open_batch() -> None:
    batcher: Batcher[int] = Batcher(LIMITS)
    assert batcher.next_due() is None
    batcher.add("t", 0, b"k", b"v", 1, 1.0)
    batcher.add("t", 1, b"k", b"v", 2, 2.0)
    assert batcher.next_due() == pytest.approx(1.005)
    batcher.due(1.005)
    assert batcher.next_due() == pytest.approx(2.005)
    batcher.add("t", 0, b"k", b"v", 3, 3.0)  # reopened: now the youngest
    assert [b.partition for b in batcher.due(2.006)] == [1]
    assert batcher.next_due() == pytest.approx(3.005)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["t", "u"]), st.integers(0, 3), st.integers(0, 300)),
        max_size=200,
    ),
    st.integers(1, 8),
    st.integers(1, 600),
)
def test_per_partition_order_and_bounds_hold(
    adds: list[tuple[str, int, int]], max_envelopes: int, max_bytes: int
) -> None:
    """Closed batches, in the order returned (then the linger and the drain), hold every
    envelope once, in add order per partition, each batch within the limits unless alone."""
    limits = BatchLimits(linger_s=0.01, max_envelopes=max_envelopes, max_bytes=max_bytes)
    batcher: Batcher[int] = Batcher(limits)
    sent: list[Batch[int]] = []
    for seq, (topic, partition, size) in enumerate(adds):
        sent += batcher.add(topic, partition, b"k", b"x" * size, seq, seq * 0.001)
        sent += batcher.due(seq * 0.001)
    sent += batcher.drain()
    assert batcher.pending == 0
    for where in {(t, p) for t, p, _ in adds}:
        want = [seq for seq, (t, p, _) in enumerate(adds) if (t, p) == where]
        got = [seq for b in sent if (b.topic, b.partition) == where for seq in b.tokens]
        assert got == want
    for batch in sent:
        assert 1 <= len(batch.values) <= max_envelopes
        assert batch.size == batch_bytes(sum(map(len, batch.values)), len(batch.values))
        assert batch.size <= max_bytes or len(batch.values) == 1


def test_pack_groups_by_partition_in_order() -> None:
    def partition(topic: str, key: bytes) -> int:
        return partition_of(key, 2)

    keys = [f"call-{n}".encode() for n in range(6)]
    items = [("wcs.call", keys[n % 6], b"%d" % n) for n in range(20)]
    batches = pack(items, LIMITS, partition)
    assert sum(len(b.values) for b in batches) == 20
    for batch in batches:
        assert partition_of(batch.key, 2) == batch.partition
        assert len(batch.values) <= LIMITS.max_envelopes
    for p in (0, 1):
        want = [v for t, k, v in items if partition_of(k, 2) == p]
        assert [v for b in batches if b.partition == p for v in b.values] == want
