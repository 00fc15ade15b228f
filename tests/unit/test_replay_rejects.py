"""``--rejects`` in line order: bad lines held until the chunk's time rejects are known."""

from __future__ import annotations

from pathlib import Path

import orjson

from events.catalog import resolve
from events.envelope import make
from wcs_analytics.replay import Rejects, ReplayStats, read_chunks, read_envelopes

T = 1_767_225_600_000


def _line(n: int, at: int = T) -> bytes:
    body = {"nodeId": "n", "sessionId": f"s{n}"}
    return orjson.dumps(make(resolve("connect"), body, at + n, f"e{n}")) + b"\n"


def test_held_lines_and_rejected_envelopes_are_written_in_line_order(tmp_path: Path) -> None:
    out = tmp_path / "rejects.ndjson"
    stats = ReplayStats()
    late = make(resolve("connect"), {"nodeId": "n", "sessionId": "x"}, 5, "late")
    with Rejects(out, stats) as rejects:
        rejects.hold(7, "f:7", b"seven\n", "not JSON")
        rejects.hold(2, "f:2", b"two\n", "not JSON")
        rejects.release([(4, late, "implausible")])
        rejects.hold(9, "f:9", b"nine\n", "not JSON")  # written when the file closes
    lines = out.read_bytes().splitlines()
    assert lines[0] == b"two" and b'"id":"late"' in lines[1] and lines[2:] == [b"seven", b"nine"]
    assert stats.rejected == 4


def test_read_chunks_number_the_lines_and_hold_the_bad_ones(tmp_path: Path) -> None:
    trace = tmp_path / "t.ndjson"
    trace.write_bytes(_line(1) + b"bad one\n" + b"\n" + _line(2) + _line(3) + b"bad two\n")
    stats, out = ReplayStats(), tmp_path / "rejects.ndjson"
    with Rejects(out, stats) as rejects:
        chunks = read_chunks(trace, stats, rejects, size=2)
        envelopes, _, numbers = next(chunks)
        assert [e["id"] for e in envelopes] == ["e1", "e2"] and numbers == [1, 4]
        assert stats.rejected == 0  # "bad one" waits for the chunk's other rejects
        rejects.release()
        assert stats.rejected == 1
        assert [numbers for _, _, numbers in chunks] == [[5]]
        assert stats.rejected == 2  # the last ones at the end of the input
    assert out.read_bytes() == b"bad one\nbad two\n"


def test_read_envelopes_report_bad_lines_chunk_by_chunk(tmp_path: Path) -> None:
    trace = tmp_path / "t.ndjson"
    trace.write_bytes(b"".join(_line(n) for n in range(5)) + b"{broken\n" + _line(9))
    stats, out = ReplayStats(), tmp_path / "rejects.ndjson"
    with Rejects(out, stats) as rejects:
        ids = [env["id"] for env in read_envelopes(trace, stats, rejects)]
    assert ids == ["e0", "e1", "e2", "e3", "e4", "e9"]
    assert out.read_bytes() == b"{broken\n" and stats.rejected == 1


def test_bad_lines_are_held_one_chunk_at_the_most(tmp_path: Path) -> None:
    """A file of bad lines is reported as it is read, not kept in memory to the end."""
    trace = tmp_path / "t.ndjson"
    trace.write_bytes(b"bad\n" * 7 + _line(1) + b"bad\n" * 2)
    stats, out = ReplayStats(), tmp_path / "rejects.ndjson"
    with Rejects(out, stats) as rejects:
        seen = []
        for envelopes, _, numbers in read_chunks(trace, stats, rejects, size=3):
            seen.append((len(envelopes), numbers, stats.rejected))
            rejects.release()
    assert seen == [(0, [], 0), (0, [], 3), (1, [8], 6)]  # rejected: before each release
    assert stats.rejected == 9 and out.read_bytes() == b"bad\n" * 9
