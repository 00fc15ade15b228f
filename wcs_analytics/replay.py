"""``wcs-analytics replay FILE.ndjson [FILE ...]``: recorded envelopes through the processors.

Event time comes from the envelopes only (no wall clock), so a replay is
deterministic. At end of input: windows are emitted, every row is written (open
sessions as open) with the state, then it exits. Lines that are not valid
envelopes are reported with their line number and written to a rejects file;
the rest is still replayed. The input may be gzip-compressed, or several files merged by
time (replay_input.py); if it cannot be read to its end, what was read before is replayed
and the reason reported.
With ``--kafka`` the envelopes (their recorded ``received_at`` kept) are published to the
family topics instead, for workers.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO, TypeVar

from events.envelope import Envelope, EnvelopeError, decode_keeping_body, encode
from ingest.redact import envelope_redactor
from wcs_analytics import gc_tuning
from wcs_analytics.replay_input import Input, InputError
from wcs_analytics.settings import Settings
from wcs_analytics.store import Store

log = logging.getLogger(__name__)


CHUNK = 2000  # envelopes fed to the runtime at a time
T = TypeVar("T")


@dataclass
class ReplayStats:
    lines: int = 0
    envelopes: int = 0
    rejected: int = 0
    rows_written: int = 0
    late_dropped: int = 0
    seconds: float = 0.0
    unreadable: str | None = None  # why the input could not be read to its end


class Progress:
    """A progress line on stderr every ``every_s`` seconds; with the input's size known, the
    time left at the rate so far."""

    def __init__(
        self,
        total_bytes: int,
        out: TextIO = sys.stderr,
        every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.out, self.every_s, self.clock = total_bytes, out, every_s, clock
        self.start = self.last = clock()

    def update(self, done_bytes: int, envelopes: int, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = envelopes / elapsed
        if self.total:
            where = f"{100.0 * done_bytes / self.total:5.1f}% of input"
            if 0 < done_bytes < self.total:
                where += f", {duration_text(elapsed * (self.total - done_bytes) / done_bytes)} left"
        else:  # a pipe: no size known
            where = f"{done_bytes / 1e6:,.1f} MB read"
        print(f"replay: {envelopes} envelopes, {where}, {rate:,.0f}/s", file=self.out, flush=True)


def duration_text(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


Chunk = tuple[list[Envelope], list[str | None], list[int]]  # envelopes, bodies, line numbers


def read_chunks(
    paths: Path | Sequence[Path],
    stats: ReplayStats,
    rejected: Rejects,
    redact_keys: Iterable[str] = (),
    size: int = CHUNK,
) -> Iterator[Chunk]:
    """Valid envelopes of NDJSON input (one file, or several merged by time: replay_input.py),
    in input order and in chunks of ``size``, redacted as ingest does (the file may be a raw
    capture), with their bodies' JSON text when nothing was removed (None: it is serialised
    again) and their line numbers. Bad lines are held in ``rejected`` until the caller
    releases the chunk's rejects (``Rejects.release``)."""
    redact = envelope_redactor(redact_keys)
    source = Input(as_paths(paths))
    number = bad = 0
    chunk: list[Envelope] = []
    bodies: list[str | None] = []
    numbers: list[int] = []
    failure: InputError | None = None
    lines = source.lines()
    progress = Progress(0)  # its size is known once the input is open
    try:
        for number, line in lines:
            try:
                envelope, body = decode_keeping_body(line)
            except EnvelopeError as exc:
                stats.lines, bad = number, bad + 1
                rejected.hold(number, source.where(number), line, str(exc))
                if bad < size:
                    continue
            else:
                redacted = redact(envelope, body)
                chunk.append(redacted)
                bodies.append(body if redacted is envelope else None)
                numbers.append(number)
            if len(chunk) >= size or bad >= size:  # bad lines held: at most one chunk's
                bad = 0
                stats.lines, stats.envelopes = number, stats.envelopes + len(chunk)
                yield chunk, bodies, numbers
                chunk, bodies, numbers = [], [], []
                progress.total = source.total
                progress.update(source.done, stats.envelopes)
    except InputError as exc:  # damaged or cut short: what was read is still replayed
        failure = exc
    finally:
        lines.close()  # the files are closed, also when the caller stops early
    stats.lines = number
    stats.envelopes += len(chunk)
    if chunk:
        yield chunk, bodies, numbers
    rejected.release()  # bad lines after the last envelope
    progress.total = source.total
    progress.update(source.done, stats.envelopes, force=True)
    if failure is not None:
        raise failure


def as_paths(paths: Path | Sequence[Path]) -> list[Path]:
    return [paths] if isinstance(paths, Path) else list(paths)


def readable(chunks: Iterator[T], stats: ReplayStats) -> Iterator[T]:
    """``chunks`` up to where the input became unreadable (``stats.unreadable`` says why)."""
    try:
        yield from chunks
    except InputError as exc:
        stats.unreadable = str(exc)


def read_envelopes(
    paths: Path | Sequence[Path],
    stats: ReplayStats,
    rejected: Rejects,
    redact_keys: Iterable[str] = (),
) -> Iterator[Envelope]:
    """``read_chunks``, one envelope at a time (bad lines reported chunk by chunk)."""
    for chunk, _, _ in read_chunks(paths, stats, rejected, redact_keys):
        yield from chunk
        rejected.release()


class Rejects:
    """Lines and envelopes not replayed: counted, written to ``--rejects`` in line order,
    logged (the first of each kind in full, then a summary at the end)."""

    def __init__(self, path: Path | None, stats: ReplayStats) -> None:
        self.path, self.stats = path, stats
        self._file: BinaryIO | None = None
        self.kinds: Counter[str] = Counter()
        self._held: list[tuple[int, str, bytes, str]] = []  # (line number, where, line, why)

    def __enter__(self) -> Rejects:
        return self

    def hold(self, number: int, where: str, line: bytes, reason: str) -> None:
        """A bad line, written by the next ``release`` with the envelopes rejected later."""
        self._held.append((number, where, line, reason))

    def release(self, envelopes: Iterable[tuple[int, Envelope, str]] = ()) -> None:
        """The held lines and ``envelopes`` (line number, envelope, reason), in line order."""
        reports = self._held + [(n, *_envelope_report(env, why)) for n, env, why in envelopes]
        self._held = []
        for _, where, line, reason in sorted(reports, key=lambda report: report[0]):
            self.line(where, line, reason)

    def __exit__(self, *exc: object) -> None:
        self.release()
        if self._file is not None:
            self._file.close()
        for kind, n in sorted(self.kinds.items()):
            if n > 1:
                log.error("%d lines not replayed: %s", n, kind)

    def line(self, where: str, line: bytes, reason: str) -> None:
        self.stats.rejected += 1
        kind = reason.split(":")[0]
        self.kinds[kind] += 1
        if self.kinds[kind] == 1:
            log.error("%s: not replayed: %s", where, reason)
        if self.path is not None:
            self._file = self._file or self.path.open("ab")
            self._file.write(line if line.endswith(b"\n") else line + b"\n")

    def envelope(self, envelope: Envelope, reason: str) -> None:
        self.line(*_envelope_report(envelope, reason))


def _envelope_report(envelope: Envelope, reason: str) -> tuple[str, bytes, str]:
    """(where, line, reason) of an envelope rejected for its time."""
    return (f"envelope {envelope['id']!r}", encode(envelope), f"{reason}: "
            f"received_at {envelope['received_at']!r} is not a plausible time")  # fmt: skip


def replay(store: Store, paths: Path | Sequence[Path], rejects: Path | None = None) -> ReplayStats:
    """Feed the input (one file, or several merged by time) through ``store`` in chunks; at
    the end every row is written (open sessions as open) and the state is stored for the next
    replay or start."""
    stats = ReplayStats()
    gc_tuning.tune()
    started = time.monotonic()
    written_before = store.writer.stats["rows_written"]
    with Rejects(rejects, stats) as rejected:
        chunks = read_chunks(paths, stats, rejected, store.settings.redact_keys)
        for chunk, bodies, numbers in readable(chunks, stats):
            _feed(store, chunk, bodies, numbers, rejected)
        store.finish()
    stats.rows_written = store.writer.stats["rows_written"] - written_before
    stats.late_dropped = store.runtime.late_dropped
    stats.seconds = time.monotonic() - started
    return stats


def _feed(
    store: Store,
    chunk: list[Envelope],
    bodies: list[str | None],
    numbers: list[int],
    rejected: Rejects,
) -> None:
    late: list[tuple[int, Envelope, str]] = []
    if chunk:
        store.feed(chunk, bodies)
        if store.rejected:
            number = {id(envelope): n for envelope, n in zip(chunk, numbers, strict=True)}
            late = [(number[id(env)], env, reason) for env, reason in store.rejected]
            store.rejected.clear()
    rejected.release(late)  # with the bad lines held since the last chunk, in line order
    if store.due():
        store.flush(windows=False)


def replay_to_kafka(
    settings: Settings, paths: Path | Sequence[Path], rejects: Path | None = None
) -> ReplayStats:
    """Publish the input's envelopes to the family topics. Raises as publish_envelopes does."""
    from wcs_analytics.kafka_ingest import publish_envelopes

    stats = ReplayStats()
    started = time.monotonic()
    with Rejects(rejects, stats) as rejected:
        envelopes = read_envelopes(paths, stats, rejected, settings.redact_keys)
        asyncio.run(publish_envelopes(settings, readable(envelopes, stats)))
    stats.seconds = time.monotonic() - started
    return stats
