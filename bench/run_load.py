"""Sustained-rate step of bench/run_bench.py: the service process, an open-loop load
generator and the /metrics + /health sampler.

The generator keeps ``--gen-connections`` keep-alive connections and sends request ``i``
at ``start + i / rate`` on connection ``i % n`` whether or not earlier answers arrived
(HTTP/1.1 pipelining when they lag), so a slow server cannot slow the offered load;
each latency is measured from the scheduled send time. Responses are parsed with
httptools (installed with uvicorn), on uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httptools
import uvloop
from ingest_bench import free_port, wait_ready
from run_mix import MixRequests

HOST = "127.0.0.1"


class Service:
    """``wcs-analytics run`` on a free port with its own data dir; ``stop`` sends SIGTERM."""

    def __init__(self, cli: str, data_dir: Path, log_path: Path) -> None:
        self.cli, self.data_dir, self.log_path = cli, data_dir, log_path
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.stop_seconds = 0.0
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Service:
        cmd = [self.cli, "run", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([*cmd, "--log-level", "warning"], stdout=log, stderr=log)
        wait_ready(self.base + "/health", timeout=60)
        return self

    def stop(self) -> int:
        """SIGTERM, then wait for the flush-and-exit; returns the exit status."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=300)
        self.stop_seconds = time.monotonic() - started
        return rc

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def count_events(self) -> int:
        """Rows in ``events`` (run only after ``stop``: the embedded store has one owner)."""
        sql = "SELECT count() FROM events"
        cmd = [self.cli, "query", "--data-dir", str(self.data_dir), "--log-level", "warning", sql]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return int(done.stdout.split()[-1])  # the last line: the count


# ---- open-loop generator -----------------------------------------------------------------------


@dataclass
class LoadStats:
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    sent: int = 0
    send_seconds: float = 0.0
    max_send_lag: float = 0.0
    expected: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def check_all_in(self) -> None:
        if self.answered + self.lost >= self.expected:
            self.all_in.set()


class _Connection(asyncio.Protocol):
    def __init__(self, stats: LoadStats) -> None:
        self.stats = stats
        self.parser = httptools.HttpResponseParser(self)
        self.scheduled: collections.deque[float] = collections.deque()
        self.transport: Any = None  # uvloop's TCPTransport is not an asyncio.Transport subclass

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:  # httptools callback
        self.stats.statuses[self.parser.get_status_code()] += 1
        self.stats.latencies.append(time.perf_counter() - self.scheduled.popleft())
        self.stats.check_all_in()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.lost += len(self.scheduled)
        self.scheduled.clear()
        self.stats.check_all_in()

    def send(self, request: bytes, scheduled: float) -> None:
        self.scheduled.append(scheduled)
        self.transport.write(request)


async def open_loop(port: int, rate: int, args: argparse.Namespace) -> LoadStats:
    """``rate`` req/s of the mix for ``args.sustain`` s; returns once every answer is in."""
    loop, stats, connections = asyncio.get_running_loop(), LoadStats(), args.gen_connections
    conns = [
        (await loop.create_connection(lambda: _Connection(stats), HOST, port))[1]
        for _ in range(connections)
    ]
    requests = MixRequests(f"r{rate}", args.slots, f"{HOST}:{port}", args.hook)
    total, start = rate * args.sustain, time.perf_counter() + 0.01
    stats.expected = total
    while stats.sent < total:  # perf_counter: uvloop's loop.time() has 1 ms resolution
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        if due > stats.sent:
            stats.max_send_lag = max(stats.max_send_lag, now - (start + stats.sent / rate))
        for i in range(stats.sent, due):
            conns[i % connections].send(requests(i), start + i / rate)
        stats.sent = max(stats.sent, due)
        await asyncio.sleep(0.0005)
    stats.send_seconds = time.perf_counter() - start
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stats.all_in.wait(), 60)
    for conn in conns:
        conn.transport.close()
    return stats


# ---- sampler -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the load started
    depth: int
    overflow: int
    processed: int
    health_status: int
    health_ms: float


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _metric(text: str, name: str) -> int:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else -1


async def sample_once(port: int, t: float) -> Sample:
    _, metrics = await http_get(port, "/metrics")
    started = time.perf_counter()
    status, _ = await http_get(port, "/health")
    health_ms = (time.perf_counter() - started) * 1000
    text = metrics.decode()
    return Sample(
        t,
        _metric(text, "wcs_ingest_queue_depth"),
        _metric(text, "wcs_bus_overflow_total"),
        _metric(text, "wcs_processed_total"),
        status,
        health_ms,
    )


async def sampler(port: int, t0: float, done: asyncio.Event, out: list[Sample]) -> None:
    loop = asyncio.get_running_loop()
    while not done.is_set():
        out.append(await sample_once(port, loop.time() - t0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 1.0)


async def drive(port: int, rate: int, args: argparse.Namespace) -> tuple[LoadStats, list[Sample]]:
    """Load for ``args.sustain`` s, sampling every second; then sample until drained."""
    loop, done = asyncio.get_running_loop(), asyncio.Event()
    samples: list[Sample] = []
    task = asyncio.create_task(sampler(port, loop.time(), done, samples))
    load = await open_loop(port, rate, args)
    done.set()
    await task
    end, ok = loop.time(), load.statuses[200]
    while loop.time() - end < 60:  # drain: until processed catches up or stops moving
        samples.append(await sample_once(port, args.sustain + loop.time() - end))
        last, before = samples[-1], samples[-2]
        if last.processed >= ok or (last.depth == 0 and last.processed == before.processed):
            break
        await asyncio.sleep(0.2)
    return load, samples


# ---- one step ----------------------------------------------------------------------------------


@dataclass
class StepResult:
    """One rate step. ``ok``: the service kept up (every answer 200, no overflow, bounded
    queue, /health 200, the generator held the rate). ``intact``: nothing accepted was
    lost (clean SIGTERM exit, one ``events`` row per 200 answer)."""

    rate: int
    load: LoadStats
    samples: list[Sample]
    sustain: int
    exit_status: int
    stop_seconds: float
    events: int
    max_p99_ms: float
    during: list[Sample] = field(init=False)
    slope: float = field(init=False)
    p50_ms: float = field(init=False)
    p99_ms: float = field(init=False)
    processed_rate: float = field(init=False)
    problems: list[str] = field(init=False)
    losses: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.during = [s for s in self.samples if s.t <= self.sustain] or self.samples[:1]
        xs, ys = [s.t for s in self.during], [s.depth for s in self.during]
        self.slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
        tail = min([s.depth for s in self.during if s.t >= self.sustain * 2 / 3] or ys)
        lat = sorted(self.load.latencies) or [0.0]
        self.p50_ms = lat[len(lat) // 2] * 1000
        self.p99_ms = lat[min(len(lat) - 1, len(lat) * 99 // 100)] * 1000
        first, last = self.during[0], self.during[-1]
        self.processed_rate = (last.processed - first.processed) / max(last.t - first.t, 1e-9)
        ok, bad, overflow = self.ok_answers, self.load.answered - self.ok_answers, self.overflow
        capacity = [
            (bad + self.load.lost == 0, f"{bad} non-200 and {self.load.lost} lost answers"),
            (overflow == 0, f"{overflow} envelopes spooled (bus full)"),
            (self.sent_rate >= 0.97 * self.rate, f"generator sent only {self.sent_rate:,.0f}/s"),
            (self.p99_ms <= self.max_p99_ms, f"p99 {self.p99_ms:,.0f} ms > {self.max_p99_ms:g}"),
            (
                self.processed_rate >= 0.95 * self.rate,
                f"processed only {self.processed_rate:,.0f}/s",
            ),
            (self.slope < 0.02 * self.rate, f"queue depth grew {self.slope:,.0f}/s"),
            (tail < self.rate // 2, f"queue depth never below {tail:,} in the last third"),
            (all(s.health_status == 200 for s in self.samples), "a /health answer was not 200"),
        ]
        integrity = [
            (self.exit_status == 0, f"exit status {self.exit_status} on SIGTERM"),
            (self.events == ok, f"{self.events:,} events rows for {ok:,} 200 answers"),
        ]
        self.problems = [why for passed, why in capacity if not passed]
        self.losses = [why for passed, why in integrity if not passed]

    @property
    def ok_answers(self) -> int:
        return self.load.statuses[200]

    @property
    def overflow(self) -> int:
        return max(s.overflow for s in self.samples)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def intact(self) -> bool:
        return not self.losses

    @property
    def sent_rate(self) -> float:
        return self.load.sent / max(self.load.send_seconds, 1e-9)

    def verdict(self) -> str:
        kept_up = "kept up" if self.ok else f"FAIL: {'; '.join(self.problems)}"
        return kept_up + ("" if self.intact else f"; LOSS: {'; '.join(self.losses)}")

    def row(self) -> str:
        drain = max(self.samples[-1].t - self.sustain, 0.0)
        health_ms = max(s.health_ms for s in self.samples)
        bad = self.load.answered - self.ok_answers
        cells: list[Any] = [
            f"{self.rate:,}", f"{self.sent_rate:,.0f}", f"{self.ok_answers:,}",
            f"{bad} / {self.load.lost}", f"{self.p50_ms:.2f}", f"{self.p99_ms:.2f}",
            f"{max(s.depth for s in self.during):,}", f"{self.slope:,.1f}", self.overflow,
            f"{self.processed_rate:,.0f}", f"{health_ms:.1f}", f"{drain:.1f}", f"{self.events:,}",
            f"{self.stop_seconds:.1f}", self.verdict(),
        ]  # fmt: skip
        return "| " + " | ".join(str(c) for c in cells) + " |"


def sustained_step(cli: str, workdir: Path, rate: int, args: argparse.Namespace) -> StepResult:
    """A fresh service, ``rate`` req/s for ``args.sustain`` s, SIGTERM, count ``events``."""
    workdir.mkdir(parents=True)
    with Service(cli, workdir / "data", workdir / "service.log") as service:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            load, samples = runner.run(drive(service.port, rate, args))
        exit_status = service.stop()
        events = service.count_events()
    stop_s = service.stop_seconds
    return StepResult(
        rate, load, samples, args.sustain, exit_status, stop_s, events, args.max_p99_ms
    )
