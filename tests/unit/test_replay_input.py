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
from wcs_analytics.replay import Rejects, ReplayStats, read_chunks, read_envelopes, readable
from wcs_analytics.replay_input import BOM, Input, InputError, is_compressed, numbered_lines

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


# ---- several files, merged by time ----------------------------------------------------


def _at(t: int, name: str) -> bytes:
    return orjson.dumps({"received_at": t, "id": name}) + b"\n"


def _merged(source: Input) -> list[tuple[int, str, str]]:
    """(number, id or the line, where) in the order the input yields them."""
    out = []
    for number, line in source.lines():
        try:
            name = orjson.loads(line)["id"]
        except orjson.JSONDecodeError:
            name = line.decode().strip()
        out.append((number, name, source.where(number)))
    return out


def test_several_files_are_merged_by_time_each_in_its_own_order(tmp_path: Path) -> None:
    """Ties go to the file named first; a file going back in time keeps its order; a line
    without a time follows the line before it in its file; blank lines and a BOM before
    line 1 count in the file's line numbers but are not lines."""
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    a.write_bytes(
        BOM + _at(10, "a1") + _at(30, "a2") + b"garbage\n" + _at(20, "a4") + _at(50, "a5")
    )
    b.write_bytes(_at(20, "b1") + b"\n" + _at(30, "b3") + _at(40, "b4"))
    merged = _merged(Input([a, b]))
    assert [name for _, name, _ in merged] == [
        "a1", "b1", "a2", "garbage", "a4", "b3", "b4", "a5"
    ]  # fmt: skip
    assert [number for number, _, _ in merged] == list(range(1, 9))
    assert [where for _, _, where in merged] == [
        f"{a}:1", f"{b}:1", f"{a}:2", f"{a}:3", f"{a}:4", f"{b}:3", f"{b}:4", f"{a}:5"
    ]  # fmt: skip
    assert [name for _, name, _ in _merged(Input([b, a]))] == [
        "a1",
        "b1",
        "b3",
        "a2",
        "garbage",
        "a4",
        "b4",
        "a5",
    ]  # fmt: skip (the tie at 30 goes to b now)


def test_one_file_keeps_its_line_numbers(tmp_path: Path) -> None:
    a = tmp_path / "a.ndjson"
    a.write_bytes(_at(30, "a1") + b"\n" + _at(10, "a3"))
    assert _merged(Input([a])) == [(1, "a1", f"{a}:1"), (3, "a3", f"{a}:3")]


def test_merged_files_are_cut_at_their_sizes_and_may_be_compressed(tmp_path: Path) -> None:
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson.gz"
    a.write_bytes(_at(10, "a1") + _at(30, "a2"))
    b.write_bytes(gzip.compress(_at(20, "b1") + _at(40, "b2")))
    size = a.stat().st_size  # when the replay starts
    with a.open("ab") as handle:
        handle.write(_at(35, "appended later"))
    source = Input([a, b], [size, None])
    assert [name for _, name, _ in _merged(source)] == ["a1", "b1", "a2", "b2"]
    assert source.total == 0  # one input's size is unknown: progress in MB read
    plain = Input([a, a])
    list(plain.lines())
    assert plain.total == plain.done == 2 * a.stat().st_size


def test_a_damaged_file_stops_the_merged_input_where_it_is_read(tmp_path: Path) -> None:
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson.gz"
    a.write_bytes(b"".join(_at(t, f"a{t}") for t in range(10, 100, 10)))
    packed = gzip.compress(b"".join(_at(t, f"b{t}") for t in range(15, 100, 10)) * 50)
    b.write_bytes(packed[: len(packed) // 2])
    seen: list[str] = []
    with pytest.raises(InputError, match=r"b\.ndjson\.gz: unreadable after line \d+"):
        for _, line in Input([a, b]).lines():
            seen.append(orjson.loads(line)["id"])
    assert seen[:4] == ["a10", "b15", "a20", "b25"] and len(seen) > 9
    again: list[str] = []
    with pytest.raises(InputError):
        for _, line in Input([a, b]).lines():
            again.append(orjson.loads(line)["id"])
    assert again == seen  # the same place every time: one process and every part alike


def test_read_chunks_reports_bad_lines_where_they_are(tmp_path: Path) -> None:
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    lines = _lines(4).splitlines(keepends=True)
    a.write_bytes(lines[0] + lines[2])
    b.write_bytes(lines[1] + b"not json\n" + lines[3])
    stats = ReplayStats()
    reported: list[str] = []
    with Rejects(None, stats) as rejects:
        rejects.line = lambda where, line, reason: reported.append(where)  # type: ignore[method-assign]
        chunks = list(read_chunks([a, b], stats, rejects, size=10))
    assert [env["id"] for chunk, _, _ in chunks for env in chunk] == ["e0", "e1", "e2", "e3"]
    assert reported == [f"{b}:2"] and stats.lines == 5


def test_replay_to_kafka_reads_several_files_merged(tmp_path: Path) -> None:
    """``replay a b --kafka`` publishes what ``read_envelopes`` gives: the merged input."""
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    lines = _lines(6).splitlines(keepends=True)
    a.write_bytes(b"".join(lines[0::2]))
    b.write_bytes(b"".join(lines[1::2]))
    stats = ReplayStats()
    with Rejects(None, stats) as rejects:
        ids = [env["id"] for env in read_envelopes([b, a], stats, rejects)]
    assert ids == [f"e{n}" for n in range(6)] and stats.envelopes == 6
