"""``replay --jobs``: how lines get their owner (the pure parts, no processes; the CLI runs
in tests/e2e/test_replay_jobs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from events.catalog import resolve as method
from events.envelope import make
from wcs_analytics import settings
from wcs_analytics.replay_jobs import CHUNK, PartProcess, guess, owner_of, read_lines, resolve

T0 = 1_767_225_600_000


def line(callid: str, at: int = T0, **changes: Any) -> bytes:
    body = {"nodeId": "n1", "appKey": "app", "sessionId": "s1", "callId": callid, "status": "RING"}
    env = make(method("CallStatusEvent"), body, at, f"id-{callid}-{at}")
    return orjson.dumps({**env, **changes}) + b"\n"


def part(index: int, jobs: int, **overrides: Any) -> PartProcess:
    return PartProcess(index, jobs, settings.load(overrides), conn=None)  # type: ignore[arg-type]


def test_owner_is_stable_and_spreads_keys() -> None:
    keys = [f"call-{i}" for i in range(3000)]
    owners = [owner_of(key, 3) for key in keys]
    assert owners == [owner_of(key, 3) for key in keys]
    assert all(800 < owners.count(n) < 1200 for n in range(3))
    assert owner_of("\ud800 lone surrogate", 2) in (0, 1)  # any str a JSON key can hold


def test_guess_reads_the_head_only() -> None:
    assert guess(line("c1"), 4) == (owner_of("c1", 4), T0)
    assert guess(b"not json\n", 4) is None
    assert guess(b'{"v":1,"received_at":5}\n', 4) is None  # no key
    assert guess(b'{"key":"k","received_at":"soon"}\n', 2) == (owner_of("k", 2), "soon")


def test_read_lines_stops_at_the_size_taken_at_start(tmp_path: Path) -> None:
    path = tmp_path / "f.ndjson"
    lines = [line(f"c{i}") for i in range(CHUNK + 5)]
    path.write_bytes(b"".join(lines[:3]) + b"\n  \n" + b"".join(lines[3:]))
    size = path.stat().st_size
    with path.open("ab") as handle:
        handle.write(line("appended later"))
    chunks = list(read_lines(path, [size]))
    assert [len(chunk) for chunk, _, _ in chunks] == [CHUNK, 5]
    assert chunks[0][0][3][0] == 6  # line numbers count the blank lines
    assert chunks[-1][1] == size and chunks[-1][0][-1][1] == lines[-1]


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path: Path) -> None:
    """Windows editors may write a UTF-8 BOM before the first line."""
    path = tmp_path / "f.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + line("c1") + b"\xef\xbb\xbf" + line("c2"))
    [(chunk, done, _)] = list(read_lines(path, [path.stat().st_size]))
    assert [text for _, text in chunk] == [line("c1"), b"\xef\xbb\xbf" + line("c2")]
    assert done == path.stat().st_size and guess(chunk[0][1], 2) is not None


def test_the_guessed_owner_fixes_what_the_head_got_wrong() -> None:
    """A line is decoded by the part its head names (part 0 when there is no head); that
    part reports lines that are no envelope, whose entity (from the body) belongs to
    another part, or whose head time is not the envelope's."""
    jobs = 2
    good = line("c-good")
    wrong_key = line("c-moved", key="unrelated")  # the state is keyed by callId
    bad = line("c-bad", family="nope")
    odd_time = line("c-time", received_at="123")
    chunk = [(n, text) for n, text in enumerate([good, wrong_key, bad, odd_time, b"[]\n"], 1)]
    fixes: dict[int, Any] = {}
    owned: dict[int, int] = {}
    for index in range(jobs):
        guesses, own, part_fixes = part(index, jobs).check(chunk)
        assert not set(part_fixes) & set(fixes)  # one checker per line
        fixes.update(part_fixes)
        owned.update(dict.fromkeys(own, index))
    truths = resolve(guesses, fixes)
    assert truths[0] == (owner_of("c-good", jobs), T0) and 0 not in fixes
    assert truths[1] == (owner_of("c-moved", jobs), T0)
    assert (1 in fixes) == (owner_of("unrelated", jobs) != owner_of("c-moved", jobs))
    assert isinstance(truths[2], str) and "unknown family" in truths[2]
    assert isinstance(truths[3], str) and "received_at" in truths[3]
    assert isinstance(truths[4], str) and owned.get(4) is None  # part 0 decoded it
    assert owned[0] == owner_of("c-good", jobs)


def test_a_line_given_to_another_part_is_fed_there() -> None:
    jobs = 2
    key = next(f"k{i}" for i in range(100) if owner_of(f"k{i}", jobs) != owner_of("c-x", jobs))
    chunk = [(1, line("c-x", key=key))]
    checker = part(owner_of(key, jobs), jobs)
    guesses, own, fixes = checker.check(chunk)
    assert fixes == {0: (owner_of("c-x", jobs), T0)}
    owner = part(owner_of("c-x", jobs), jobs)
    owner.lookup = lambda keys: []  # type: ignore[method-assign]
    assert owner.feed(chunk, guesses, {}, fixes) == []
    assert owner.part.runtime.open_entities() == 1 and owner.events.event_count == 1
    assert checker.feed(chunk, guesses, own, fixes) == []
    assert checker.part.runtime.open_entities() == 0 and checker.events.event_count == 0
