"""A Bloom filter of entity keys: "is this key's state maybe in the state table?".

Every key written to the state table is added; a key the filter has never seen is
certainly not there, so a brand-new entity costs no database lookup. False positives
(``error_rate``) cost one batched lookup that finds nothing. It grows by adding a new,
twice larger filter with half the error rate of the previous one when the current one is
full, so the error rate stays below twice ``error_rate`` whatever the number of keys.
Pure: no IO; rebuilt from the table on start.
"""

from __future__ import annotations

import hashlib
import math
from typing import Final

DEFAULT_CAPACITY: Final = 1 << 20


class _Filter:
    __slots__ = ("bits", "capacity", "count", "error", "hashes", "size")

    def __init__(self, capacity: int, error_rate: float) -> None:
        self.capacity, self.error = capacity, error_rate
        self.size = max(64, int(-capacity * math.log(error_rate) / math.log(2) ** 2))
        self.hashes = max(1, round(self.size / capacity * math.log(2)))
        self.bits = bytearray((self.size + 7) // 8)
        self.count = 0

    def positions(self, h1: int, h2: int) -> list[int]:
        size = self.size
        return [(h1 + i * h2) % size for i in range(self.hashes)]

    def add(self, h1: int, h2: int) -> bool:
        """Set the key's bits; False when they were all set already (maybe seen before)."""
        bits, new = self.bits, False
        for pos in self.positions(h1, h2):
            byte, mask = pos >> 3, 1 << (pos & 7)
            if not bits[byte] & mask:
                bits[byte] |= mask
                new = True
        if new:
            self.count += 1
        return new

    def __contains__(self, hashed: tuple[int, int]) -> bool:
        bits = self.bits
        return all(bits[pos >> 3] & (1 << (pos & 7)) for pos in self.positions(*hashed))


def _hash(family: str, key: str) -> tuple[int, int]:
    digest = hashlib.blake2b(f"{family}\x00{key}".encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1


class KeyFilter:
    """Scalable Bloom filter over ``(family, key)``."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, error_rate: float = 0.001) -> None:
        self.error_rate = error_rate
        self._filters = [_Filter(capacity, error_rate)]

    def __len__(self) -> int:
        return sum(f.count for f in self._filters)

    @property
    def nbytes(self) -> int:
        return sum(len(f.bits) for f in self._filters)

    def add(self, family: str, key: str) -> None:
        current = self._filters[-1]
        if current.count >= current.capacity:  # rates halve: their sum stays < 2 x error_rate
            current = _Filter(current.capacity * 2, self.error_rate / 2 ** len(self._filters))
            self._filters.append(current)
        current.add(*_hash(family, key))

    def dump(self) -> list[tuple[int, float, bytes, int]]:
        """Plain data for another process (compiled classes do not pickle): ``load`` it."""
        return [(f.capacity, f.error, bytes(f.bits), f.count) for f in self._filters]

    @classmethod
    def load(cls, data: list[tuple[int, float, bytes, int]]) -> KeyFilter:
        keys = cls(data[0][0], data[0][1])
        keys._filters = []
        for capacity, error, bits, count in data:
            part = _Filter(capacity, error)
            part.bits, part.count = bytearray(bits), count
            keys._filters.append(part)
        return keys

    def might_contain(self, family: str, key: str) -> bool:
        hashed = _hash(family, key)
        return any(hashed in f for f in self._filters)
