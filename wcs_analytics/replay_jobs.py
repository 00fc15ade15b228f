"""``wcs-analytics replay FILE --jobs N``: the processing in N part processes, this process
owning the database. The tables are those of ``--jobs 1`` (tests/e2e/test_replay_jobs.py);
docs/processing.md, "`replay --jobs N`".

* **Lines.** Every part reads the same bytes of the input (each file up to its size when
  the replay starts; several files merged by time in the same order, replay_input.py) in
  chunks of ``CHUNK`` non-empty lines, and decodes the head of every line (``received_at``
  and ``key``). A line's guessed owner is the crc32 of its ``key`` modulo N (part 0 when
  the head does not decode). The guessed owner decodes the line in
  full (and redacts it, as ``replay`` does) and checks the guess against the truth: a line
  that is no envelope, or whose entity key (from the body: what states are keyed by)
  belongs to another part, or whose ``received_at`` is not the head's, gets a *fix*. This
  process sends the fixes of a chunk to every part before any part feeds it, so every part
  and the merger see the same envelopes and each envelope has exactly one owner. The parts
  check ``AHEAD`` chunks beyond the one they feed, so the exchange does not hold them up.
* **Processing.** Each part feeds ``processors.split.Part`` (its own envelopes applied,
  the others moving its clock) and builds its ``events`` columns. This process feeds the
  ``Merger`` (summed windows, the one alert stage) with the times of the same envelopes.
* **Flushes.** This process decides them (every ``batch_rows`` lines or
  ``batch_interval_ms``) and tells the parts with the chunk's fixes; the parts send their
  rows, window emissions, ``events`` columns and their state rows (serialised there, under
  the version this process gave). This process adds the summed windows, the alerts and the
  meta row (``Merger.meta``) and hands everything to the insert thread as one checkpoint of
  one runtime: ``run``, a ``--jobs 1`` replay or one with another N continue it.
* **State.** The stored meta and open states are read here and each part gets the states
  it owns; a part asks this process for the stored states of owned keys it does not hold
  (sessions evicted earlier), answered from the state store.

* **Pipes.** Each part has one pipe to this process. This process writes to each from a
  thread of its own (``PipeSender``) and reads them in its main thread, so a message larger
  than a pipe's buffer (a large stored state, a chunk of bad lines) never leaves both
  sides blocked writing. What waits to be sent is bounded by the protocol: the fixes of at
  most ``AHEAD + 2`` chunks sent ahead, one answer per lookup a part waits for.

A part that fails stops the replay with its traceback; what the last completed flush wrote
stays (rows, then the state that describes them), nothing of the failed flush is written.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import time
import traceback
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from events.envelope import Envelope, EnvelopeError, decode_keeping_body
from ingest.redact import envelope_redactor
from processors.alert_rules import load_rules
from processors.alert_stage import AlertStage
from processors.clock import TimerKey
from processors.families import entity_key
from processors.split import Merger, Part
from sinks.batch import Batch
from sinks.insert_thread import InsertThread
from sinks.key_filter import KeyFilter
from sinks.state_store import decode, encode, state_rows
from wcs_analytics import gc_tuning
from wcs_analytics.cpus import MAX_JOBS
from wcs_analytics.pipe_sender import PipeSender
from wcs_analytics.processing import ask_for_states
from wcs_analytics.replay import Progress, Rejects, ReplayStats, as_paths
from wcs_analytics.replay_input import Input, InputError, is_compressed
from wcs_analytics.settings import Settings
from wcs_analytics.store import PART, Database, is_open

log = logging.getLogger(__name__)

CHUNK = 2000  # lines decoded, checked and fed at a time
AHEAD = 3  # chunks a part checks beyond the one it feeds
Line = tuple[int, bytes]  # (line number, the line)
Guess = tuple[int, Any] | None  # (owner, received_at) from the head; None: no head
Fix = str | tuple[int, int]  # why a line is no envelope, or its true (owner, received_at)
Flush = tuple[bool, int, int] | None  # (windows, state version, wall ms)


class PartFailed(RuntimeError):
    """A part process raised or died: the replay stops."""


class _Head(msgspec.Struct):
    received_at: Any
    key: str


_HEAD = msgspec.json.Decoder(_Head)


def owner_of(key: str, jobs: int) -> int:
    """The part that owns an entity key (an envelope's or a state's)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % jobs


def guess(line: bytes, jobs: int) -> Guess:
    """The owner and time a line's head names (one msgspec pass, the body skipped)."""
    try:
        head = _HEAD.decode(line)
    except msgspec.DecodeError:
        return None
    return owner_of(head.key, jobs), head.received_at


def read_lines(
    paths: Path | Sequence[Path], sizes: Sequence[int | None] | None
) -> Iterator[tuple[list[Line], int, Callable[[int], str]]]:
    """The non-empty lines of the input (one file, or several merged by time), each file
    read up to its size when the replay started (``sizes``; None: all of it, for compressed
    input), in chunks, with the bytes read so far and what names a line of the chunk
    (``FILE:LINE``). Raises InputError after the last chunk when the input cannot be read to
    its end (every part at the same line)."""
    paths = as_paths(paths)
    source = Input(paths, sizes)
    chunk: list[Line] = []
    failure: InputError | None = None
    lines = source.lines()
    try:
        for numbered in lines:
            chunk.append(numbered)
            if len(chunk) >= CHUNK:
                yield chunk, source.done, source.where
                chunk = []
    except InputError as exc:  # damaged or cut short: what was read is still replayed
        failure = exc
    finally:
        lines.close()
    if chunk:
        yield chunk, source.done, source.where
    if failure is not None:
        raise failure


def resolve(guesses: Sequence[Guess], fixes: dict[int, Fix]) -> list[Fix | None]:
    """Each line's truth: its fix, else its guess (None only if a fix is missing)."""
    return [fixes.get(i, g) for i, g in enumerate(guesses)]


# ---- a part process ------------------------------------------------------------------


class PartProcess:
    """What a part process does with its chunks (the process loop is ``_part_main``)."""

    def __init__(self, index: int, jobs: int, settings: Settings, conn: Connection) -> None:
        self.index, self.jobs, self.conn = index, jobs, conn
        self.part = Part(settings.processor_config(), index, persistent=True)
        self.redact = envelope_redactor(settings.redact_keys)
        self.events = Batch()
        self.keys = KeyFilter()
        self.inbox: deque[Any] = deque()
        self.unreadable: str | None = None  # why the input could not be read to its end

    def start(
        self, meta: dict[str, Any] | None, states: list[tuple[TimerKey, str]], keys: Any
    ) -> None:
        self.keys = KeyFilter.load(keys)  # the stored keys; this part adds the keys it writes
        if meta is not None:
            self.part.load_meta(meta)
        self.part.runtime.adopt((skey, decode(skey[0], text)) for skey, text in states)

    def decode(self, line: bytes) -> tuple[Envelope, str | None]:
        envelope, body = decode_keeping_body(line)
        redacted = self.redact(envelope, body)
        return redacted, body if redacted is envelope else None

    def check(self, chunk: list[Line]) -> tuple[list[Guess], dict[int, Any], dict[int, Fix]]:
        """Guesses of every line; the lines guessed to be this part's, decoded; fixes."""
        jobs, index = self.jobs, self.index
        guesses = [guess(line, jobs) for _, line in chunk]
        own: dict[int, Any] = {}
        fixes: dict[int, Fix] = {}
        for i, g in enumerate(guesses):
            if (0 if g is None else g[0]) != index:
                continue
            try:
                decoded = self.decode(chunk[i][1])
            except EnvelopeError as exc:
                fixes[i] = str(exc)
                continue
            own[i] = decoded
            envelope = decoded[0]
            key = entity_key(envelope)[0]  # what its state is keyed by, if it has one
            true = (
                owner_of(envelope["key"] if key is None else key, jobs),
                envelope["received_at"],
            )
            if g is None or g != true or type(g[1]) is not int:
                fixes[i] = true
        return guesses, own, fixes

    def feed(
        self, chunk: list[Line], guesses: list[Guess], own: dict[int, Any], fixes: dict[int, Fix]
    ) -> list[tuple[int, Envelope, str]]:
        """Feed the chunk as fixed; returns (line number, envelope, reason) of this part's
        envelopes rejected for their time."""
        batch: list[Any] = []
        owners: list[int] = []
        mine: list[tuple[int, Any]] = []  # (line number, (envelope, body))
        for i, truth in enumerate(resolve(guesses, fixes)):
            if truth is None or isinstance(truth, str):
                continue
            owner, received_at = truth
            if owner == self.index:
                decoded = own.get(i) or self.decode(chunk[i][1])  # or given to this part
                mine.append((chunk[i][0], decoded))
                batch.append(decoded[0])
            else:
                batch.append({"received_at": received_at})
            owners.append(owner)
        rejected = self.part.feed(batch, owners, self.lookup)
        bad = {id(batch[i]): reason for i, reason in rejected}
        kept = [(env, body) for _, (env, body) in mine if id(env) not in bad]
        self.events.add_events([env for env, _ in kept], [body for _, body in kept])
        return [(n, env, bad[id(env)]) for n, (env, _) in mine if id(env) in bad]

    def lookup(self, keys: set[TimerKey]) -> list[tuple[TimerKey, Any]]:
        """Stored states of owned keys not in memory: only keys stored (the filter) are
        asked for (the database, and the states being written, are the parent's)."""
        # the parent may have sent the next chunks' fixes before the answer: in the inbox
        return ask_for_states(self.conn, self.inbox, self.keys, keys) or []

    def receive(self) -> Any:
        """The next message from the parent (those that came before a lookup's answer first)."""
        return self.inbox.popleft() if self.inbox else self.conn.recv()

    def flush(self, windows: bool, version: int, now: int) -> tuple[Any, ...]:
        part = self.part
        rows = part.flush(windows)
        emissions = part.take_emissions()
        checkpoint = part.runtime.begin_checkpoint()
        states, evicted = state_rows(checkpoint, is_open, PART, version, now)
        for row in states:
            self.keys.add(row["family"], row["key"])
        events, self.events = self.events.events, Batch()
        late = part.runtime.late_dropped
        return rows, emissions, events, states, evicted, checkpoint.meta, late


def _part_main(index: int, jobs: int, settings: Settings, paths: list[Path],
               sizes: list[int | None], conn: Connection,
               inherited: list[Connection]) -> None:  # fmt: skip
    """A part: keeps ``AHEAD`` chunks checked (their fixes sent) beyond the one it feeds.
    ``inherited``: the parent's ends of this part's and the earlier parts' pipes, closed here
    so that each part sees its pipe end when the parent closes its end."""
    for other in inherited:
        other.close()
    try:
        proc = PartProcess(index, jobs, settings, conn)
        chunks = read_lines(paths, sizes)
        checked: deque[tuple[list[Line], list[Guess], dict[int, Any]]] = deque()
        more = True
        while more and len(checked) < AHEAD + 1:  # while the database opens: the first chunks
            ahead = _send_check(proc, _next(chunks, proc))
            more = ahead is not None
            if ahead is not None:
                checked.append(ahead)
        _, meta, states, keys = conn.recv()
        proc.start(meta, states, keys)
        gc_tuning.tune()
        while True:
            message = proc.receive()
            if message[0] == "end":
                conn.send(("done", [], [], proc.flush(True, *message[1:])))
                return
            _, fixes, flush = message
            if not checked:
                raise RuntimeError("told to feed a chunk past the end of the input")
            chunk, guesses, own = checked.popleft()
            if more:  # the next check goes out before this chunk's rows
                ahead = _send_check(proc, _next(chunks, proc))
                more = ahead is not None
                if ahead is not None:
                    checked.append(ahead)
            rejected = proc.feed(chunk, guesses, own, fixes)
            emissions = proc.part.take_emissions()
            conn.send(("done", rejected, emissions, None if flush is None else proc.flush(*flush)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the parent is gone or stopping: nothing to report to
    except BaseException:
        with contextlib.suppress(OSError):  # the parent may be gone too
            conn.send(("error", traceback.format_exc()))


def _next(chunks: Iterator[tuple[list[Line], int, Callable[[int], str]]], proc: PartProcess) -> Any:
    """The next chunk; None at the end of the input, or where it became unreadable."""
    try:
        return next(chunks, None)
    except InputError as exc:
        proc.unreadable = str(exc)
        return None


def _send_check(
    proc: PartProcess, read: tuple[list[Line], int, Callable[[int], str]] | None
) -> tuple[list[Line], list[Guess], dict[int, Any]] | None:
    """Check the next chunk and send its fixes, the lines this part found bad (with where
    they are: ``FILE:LINE``) and (part 0)
    every line's number and guess; None at the end of the input (sent as None, with why the
    input could not be read further if it could not)."""
    if read is None:
        proc.conn.send(("check", None, proc.unreadable))
        return None
    chunk, done_bytes, where = read
    guesses, own, fixes = proc.check(chunk)
    bad = {i: (*chunk[i], where(chunk[i][0])) for i, fix in fixes.items() if isinstance(fix, str)}
    heads = ([n for n, _ in chunk], guesses, done_bytes) if proc.index == 0 else None
    proc.conn.send(("check", (fixes, bad, heads)))
    return chunk, guesses, own


# ---- this process --------------------------------------------------------------------


class _Parts:
    """The part processes and their pipes."""

    def __init__(
        self, jobs: int, settings: Settings, paths: list[Path], sizes: list[int | None]
    ) -> None:
        ctx = mp.get_context("fork")  # before the database is opened here: no chDB in them
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for index in range(jobs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_part_main,
                args=(index, jobs, settings, paths, sizes, theirs, [*self.conns, mine]),
                name=f"replay-part-{index}",
                daemon=True,
            )
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        # after every fork: no thread is copied into a part
        self.senders = [PipeSender(conn, f"replay-send-{i}") for i, conn in enumerate(self.conns)]

    def send(self, message: Any) -> None:
        for index in range(len(self.conns)):
            self.send_to(index, message)

    def send_to(self, index: int, message: Any) -> None:
        """Queued: this process never waits on a full pipe (a part that died is seen when
        its pipe is read)."""
        self.senders[index].put(message)

    def _died(self, index: int) -> PartFailed:
        self.procs[index].join(timeout=5)
        code = self.procs[index].exitcode
        return PartFailed(f"replay part {index} exited (exit code {code})")

    def receive(self, kind: str, answer: Callable[[list[TimerKey]], Any]) -> list[Any]:
        """The next ``kind`` message of every part, answering their lookups meanwhile."""
        out = []
        for index, conn in enumerate(self.conns):
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    raise self._died(index) from None
                if message[0] == "lookup":
                    self.send_to(index, ("found", answer(message[1])))
                    continue
                if message[0] == "error":
                    raise PartFailed(f"replay part {index} failed:\n{message[1]}")
                if message[0] != kind:
                    raise PartFailed(f"replay part {index} sent {message[0]!r}, not {kind!r}")
                out.append(message)
                break
        return out

    def close(self) -> None:
        """Parts still waiting for this process see their pipe end and exit."""
        for sender in self.senders:
            sender.end()
        for sender in self.senders:
            sender.thread.join(timeout=1)  # still writing to a part that is stuck: see below
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()


class _Parent:
    """This process's side: rejects, the merger, the writes."""

    def __init__(self, db: Database, jobs: int, rejected: Rejects, stats: ReplayStats) -> None:
        self.db, self.jobs, self.rejected, self.stats = db, jobs, rejected, stats
        settings = db.settings
        stage = AlertStage(load_rules(settings.alert_rules))
        self.merger = Merger(settings.processor_config(), stage)
        self.inserts = InsertThread(db.writer)
        self.lines_since_flush = 0
        self.last_flush = time.monotonic()
        self.late_dropped = 0

    def restore(self, parts: _Parts) -> None:
        """The stored meta to the merger and every part, each open state to its owner."""
        meta, states = self.db.states.load()
        if meta is not None:
            self.merger.load_meta(meta)
        shares: list[list[tuple[TimerKey, str]]] = [[] for _ in range(self.jobs)]
        for skey, state in states:
            shares[owner_of(skey[1], self.jobs)].append((skey, encode(state)))
        keys = self.db.states.keys.dump()
        for index, share in enumerate(shares):
            parts.send_to(index, ("start", meta, share, keys))
        if meta is not None or states:
            log.info("continuing the state stored in %s: %d open entities, clock %s",
                     self.db.describe(), len(states), meta and meta["clock"])  # fmt: skip

    def flush_due(self, lines: int) -> Flush:
        """Whether the parts flush after this chunk (as ``replay``: rows or time)."""
        settings = self.db.settings
        self.lines_since_flush += lines
        interval = time.monotonic() - self.last_flush >= settings.batch_interval_ms / 1000
        if self.lines_since_flush < settings.batch_rows and not interval:
            return None
        self.lines_since_flush, self.last_flush = 0, time.monotonic()
        return (False, *self.db.states.next_version())

    def take(self, chunk: _Chunk, done: list[Any]) -> None:
        """A chunk the parts fed: its rejects in line order, the merger fed."""
        stubs: list[Any] = []  # the merger reads only received_at
        for i, truth in enumerate(chunk.truths):
            if isinstance(truth, str):
                number = chunk.numbers[i]
                _, line, where = chunk.bad[i]
                self.rejected.hold(number, where, line, truth)
            elif truth is not None:
                stubs.append({"received_at": truth[1]})
        self.rejected.release(report for _, part_rejects, _, _ in done for report in part_rejects)
        self.stats.envelopes += len(stubs)
        self.merger.add([emissions for _, _, emissions, _ in done])
        self.merger.feed(stubs)

    def write(self, done: list[Any], windows: bool, version: int, now: int) -> None:
        """The parts' flushes (the last item of their ``done``) and the merger's, as one
        checkpoint of one runtime, to the insert thread (it waits for the previous one)."""
        flushed = [message[3] for message in done]
        merger, writer, states = self.merger, self.db.writer, self.db.states
        merger.add([emissions for _, emissions, *_ in flushed])
        state: list[dict[str, Any]] = []
        for rows, _, events, part_state, evicted, _, _ in flushed:
            writer.add(rows)
            writer.add_events_columns(events)
            states.track(part_state, evicted, filter_keys=False)  # the parts filter
            state += part_state
        writer.add(merger.flush(windows))
        meta = merger.meta([part_meta for *_, part_meta, _ in flushed])
        state += states.meta_rows(meta, version, now)
        writer.add_state(state)
        self.late_dropped = sum(late for *_, late in flushed)
        self.inserts.submit(writer.take(), lambda: states.written(state))


def replay_jobs(
    settings: Settings, paths: Path | Sequence[Path], jobs: int, rejects: Path | None = None
) -> tuple[ReplayStats, str]:
    """``replay`` in ``jobs`` part processes; returns its stats and the database's name.
    Raises PartFailed when a part fails (the database keeps the last completed flush)."""
    if not 2 <= jobs <= MAX_JOBS:
        raise ValueError(f"--jobs must be 1 to {MAX_JOBS}, got {jobs}")
    paths = as_paths(paths)
    sizes = [None if is_compressed(path) else path.stat().st_size for path in paths]
    size = None if None in sizes else sum(size or 0 for size in sizes)  # progress: % or MB
    parts = _Parts(jobs, settings, paths, sizes)  # forked before anything else runs here
    stats = ReplayStats()
    db: Database | None = None
    parent: _Parent | None = None
    try:
        db = Database(settings)
        started = time.monotonic()
        with Rejects(rejects, stats) as rejected:
            parent = _Parent(db, jobs, rejected, stats)
            parent.restore(parts)
            gc_tuning.tune()
            _loop(parent, parts, size, stats)
            stats.rows_written = db.writer.stats["rows_written"]
        stats.late_dropped = parent.late_dropped
        stats.seconds = time.monotonic() - started
        return stats, db.describe()
    finally:
        if parent is not None:
            parent.inserts.close(timeout=30.0)
        parts.close()
        if db is not None:
            db.close()


@dataclass
class _Chunk:
    """A chunk as this process sees it: what part 0 read, with every part's fixes."""

    numbers: list[int]
    truths: list[Fix | None]
    bad: dict[int, tuple[int, bytes, str]]  # line number, line, FILE:LINE
    flush: Flush
    done_bytes: int


def _loop(parent: _Parent, parts: _Parts, size: int | None, stats: ReplayStats) -> None:
    """The parts feed chunk c once this process sent them its fixes; they check ``AHEAD``
    chunks beyond it meanwhile, so no part waits for a slower one chunk by chunk."""

    def answer(keys: list[TimerKey]) -> list[tuple[TimerKey, str]]:
        return parent.db.states.lookup_texts(keys, filtered=True)

    progress = Progress(size or 0)  # compressed: MB read
    sent: deque[_Chunk] = deque()  # fixes sent, rows not received yet
    more = True
    read = 0
    while True:
        while more and len(sent) < AHEAD + 2:  # what a part sent before chunk c's rows
            go = _go(parent, parts, parts.receive("check", answer))
            more = go is not None
            if go is not None:
                sent.append(go)
        if not sent:
            break
        done = parts.receive("done", answer)
        current = sent.popleft()
        parent.take(current, done)
        if current.flush is not None:
            parent.write(done, *current.flush)
        stats.lines, read = current.numbers[-1], current.done_bytes
        progress.update(read, stats.envelopes)
    version, now = parent.db.states.next_version()
    parts.send(("end", version, now))
    parent.write(parts.receive("done", answer), True, version, now)
    parent.inserts.wait()
    progress.update(read if size is None else size, stats.envelopes, force=True)


def _go(parent: _Parent, parts: _Parts, checks: list[Any]) -> _Chunk | None:
    """Send the parts the fixes of the chunk they checked (and whether to flush after it):
    they feed it. None: they reached the end of the input."""
    ended = [message[1] is None for message in checks]
    if all(ended):
        parent.stats.unreadable = checks[0][2]  # every part read the same bytes
        return None
    if any(ended):
        raise PartFailed("the parts read different input (did the file change?)")
    fixes: dict[int, Fix] = {}
    bad: dict[int, tuple[int, bytes, str]] = {}
    for _, (part_fixes, part_bad, _) in checks:
        fixes.update(part_fixes)
        bad.update(part_bad)
    numbers, guesses, done_bytes = checks[0][1][2]
    flush = parent.flush_due(len(numbers))
    parts.send(("go", fixes, flush))
    return _Chunk(numbers, resolve(guesses, fixes), bad, flush, done_bytes)
