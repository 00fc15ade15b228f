"""What ``replay`` reads: plain or gzip input (by its first bytes), and damaged input."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import orjson
import pytest

from events.catalog import resolve
from events.envelope import make
from wcs_analytics.replay import Rejects, ReplayStats, read_chunks, readable
from wcs_analytics.replay_input import InputError, is_compressed, numbered_lines

T = 1_767_225_600_000


def _lines(count: int) -> bytes:
    return b"".join(
        orjson.dumps(make(resolve("connect"), {"nodeId": "n", "sessionId": f"s{n}"}, T + n,
                          f"e{n}")) + b"\n"
        for n in range(count)
    )  # fmt: skip


def _read(path: Path, stats: ReplayStats) -> list[list[int]]:
    with Rejects(None, stats) as rejects:
        return [
            numbers for _, _, numbers in readable(read_chunks(path, stats, rejects, size=3), stats)
        ]


def test_gzip_input_is_read_as_the_plain_file(tmp_path: Path) -> None:
    plain, packed = tmp_path / "day.ndjson", tmp_path / "day.log"  # the name does not matter
    plain.write_bytes(_lines(8) + b"not json\n")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert is_compressed(packed) and not is_compressed(plain)
    a, b = ReplayStats(), ReplayStats()
    assert _read(packed, b) == _read(plain, a) == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert (b.envelopes, b.rejected, b.lines, b.unreadable) == (8, 1, 9, None)


def test_cut_short_gzip_replays_the_lines_before_and_says_why(tmp_path: Path) -> None:
    whole = gzip.compress(_lines(400))
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    stats = ReplayStats()
    numbers = [n for chunk in _read(cut, stats) for n in chunk]
    assert 0 < len(numbers) < 400 and numbers == list(range(1, len(numbers) + 1))
    assert stats.envelopes == len(numbers)
    assert stats.unreadable is not None and "EOFError" in stats.unreadable
    assert stats.unreadable.startswith(f"{cut}: unreadable after line ")
    with Rejects(None, ReplayStats()) as rejects, pytest.raises(InputError):
        list(read_chunks(cut, ReplayStats(), rejects))  # without readable(): raised


def test_corrupt_gzip_is_unreadable_from_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    stats = ReplayStats()
    assert _read(bad, stats) == [] and "BadGzipFile" in (stats.unreadable or "")


def test_only_a_regular_file_is_checked_for_compression(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert not is_compressed(fifo) and not is_compressed(tmp_path)  # never opened


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path: Path) -> None:
    """Windows editors may write a UTF-8 BOM before the first line (only there)."""
    plain, packed = tmp_path / "bom.ndjson", tmp_path / "bom.ndjson.gz"
    plain.write_bytes(b"\xef\xbb\xbf" + _lines(3) + b"\xef\xbb\xbf" + _lines(1))
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        stats = ReplayStats()
        assert _read(path, stats) == [[1, 2, 3]] and stats.rejected == 1  # the second BOM


def test_only_reading_is_watched_for_damage() -> None:
    """A read that fails is the input's damage, reported with the last line read; what the
    reader does with a line (its progress on stderr, its --rejects file) is not watched."""

    class Failing(io.BytesIO):
        def __next__(self) -> bytes:
            if self.tell() >= 4:
                raise OSError("device gone")
            return super().__next__()

    lines = numbered_lines(Failing(b"a\nb\nc\n"), Path("f"))
    assert [next(lines), next(lines)] == [(1, b"a\n"), (2, b"b\n")]
    with pytest.raises(InputError, match=r"^f: unreadable after line 2 \(OSError: device gone\)"):
        next(lines)
