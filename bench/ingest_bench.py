"""Ingest hook throughput vs a bare uvicorn+orjson echo, measured with wrk in one run.

Usage: .venv/bin/python bench/ingest_bench.py [--runs 3] [--duration 5] [--target URL | --cmd CMD]
See bench/README.md. A script, not a test: results are written down, never asserted
(except the optional --min-ratio exit code).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import orjson
from machine import settle
from report import Run, median_ratio, medians_table, parse_wrk, publish, ratio_line, runs_table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # imported by uvicorn from the bench dir (--app-dir)
    sys.path.insert(0, str(ROOT))

# StreamStatusEvent as logged by WCS 5.2 (REST-HOOKS.md 3.2), ids filled in: ~800 bytes
STREAM_STATUS_EVENT: dict[str, Any] = {
    "nodeId": "d2hxOg1vFNxqvHQPv4rtOFvDVBHk7rBB@95.191.130.39",
    "appKey": "defaultApp",
    "sessionId": "04cfeb85-cf9c-49aa-8144-022dfc0cdd0b",
    "mediaSessionId": "c43a28b7-9a4d-45f8-a010-57b959a22755",
    "name": "e6dcaedd-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    "published": True,
    "hasVideo": True,
    "hasAudio": True,
    "status": "PUBLISHING",
    "audioCodec": "PCMA",
    "videoCodec": "VP8",
    "record": False,
    "width": 0,
    "height": 0,
    "bitrate": 0,
    "minBitrate": 0,
    "maxBitrate": 0,
    "quality": 0,
    "history": False,
    "gop": 0,
    "fps": 0,
    "audioBitrate": 0,
    "codecImpl": "",
    "transport": "UDP",
    "cvoExtension": False,
    "createDate": 1664260776957,
    "mediaType": "publish",
    "audioState": {"muted": False},
    "videoState": {"muted": False},
    "mediaProvider": "WebRTC",
    "custom": {"room": "bench-room-42", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) bench/1.0"},
    "origin": "https://wcs.example.com:8888",
    "info": "",
}
BODY = orjson.dumps(STREAM_STATUS_EVENT)


# ---- the two apps under test (imported by the uvicorn subprocesses) --------------------------


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Bare baseline: parse with orjson, answer its re-serialization, 200 application/json."""
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    raw = b"".join(chunks)
    body = orjson.dumps(orjson.loads(raw)) if raw else b"{}"  # {} answers the readiness probe
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def ingest_app() -> Any:
    """The ingest app on an InMemoryBus whose consumer task only drains it (uvicorn --factory)."""
    from events.bus import InMemoryBus
    from ingest.app import create_app
    from ingest.config import IngestConfig

    bus = InMemoryBus(100_000, on_overflow=lambda envelope: None)

    async def drain() -> None:
        while await bus.get() is not None:
            pass

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        task = asyncio.create_task(drain())
        yield
        task.cancel()

    app = create_app(IngestConfig(), bus)
    app.router.lifespan_context = lifespan
    return app


def serve_as_run(port: int) -> None:
    """``ingest_app`` served as ``run`` and ``ingest`` serve it: uvicorn with the connection
    guard's protocol, which answers plain hook requests itself (ingest/uvicorn_compat.py)."""
    import uvicorn

    from ingest.connections import ConnectionLimits
    from ingest.http_guard import HttpGuard

    app = ingest_app()
    guard = HttpGuard(ConnectionLimits())
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="uvloop", http=guard.protocol_class(app.hooks),
        log_level="warning", access_log=False,
    )  # fmt: skip
    uvicorn.Server(config).run()


# ---- servers -----------------------------------------------------------------------------------


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up within {timeout:.0f}s")


def free_port() -> int:
    """A port free right now (released before the server binds it: a tiny race, fine here).

    Not ``uvicorn --fd``: uvicorn treats an inherited fd as a UNIX socket and so
    never sets TCP_NODELAY, which adds 40 ms delayed-ACK stalls to every answer.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def uvicorn_server(app: str, factory: bool = False) -> Iterator[str]:
    """Run this module's ``app`` in uvicorn (uvloop, httptools, 1 worker); yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", f"ingest_bench:{app}", "--app-dir", str(ROOT / "bench")]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    cmd += ["--no-access-log", "--log-level", "warning"] + (["--factory"] if factory else [])
    with _spawn(cmd):
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/health")
        yield base


@contextmanager
def served_as_run() -> Iterator[str]:
    """``serve_as_run`` in a subprocess; yields its base URL."""
    port = free_port()
    with _spawn([sys.executable, str(Path(__file__).resolve()), "--serve-as-run", str(port)]):
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/health")
        yield base


@contextmanager
def command_server(template: str) -> Iterator[str]:
    """Run ``--cmd`` with ``{port}`` replaced by a free port; yields its base URL."""
    port = free_port()
    with _spawn(shlex.split(template.format(port=port))):
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/health", timeout=60)
        yield base


@contextmanager
def _spawn(cmd: list[str]) -> Iterator[None]:
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- wrk ---------------------------------------------------------------------------------------


def lua_script(body: bytes) -> str:
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json;charset=UTF-8"\n'
        f"wrk.body = [==[{body.decode()}]==]\n"
    )


def run_wrk(args: argparse.Namespace, script: str, url: str, duration: int) -> str:
    """wrk's output, once the machine is quiet: no target pays for the work the one measured
    before it still does (a flush, chDB merges, a broker writing its log)."""
    waited = settle()
    if waited > 1:
        print(f"waited {waited:.1f} s for a quiet machine before wrk", file=sys.stderr)
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--latency"]
    cmd += ["-s", script, url]
    cpu = getattr(args, "wrk_cpu", None)
    if cpu is not None and cpu >= 0 and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]  # wrk pinned to one core
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"{shlex.join(cmd)} failed ({done.returncode}): {done.stdout}{done.stderr}"
        )
    return done.stdout


# ---- report ------------------------------------------------------------------------------------


def report(args: argparse.Namespace, runs: list[Run], other: str) -> tuple[str, float]:
    """Markdown with one row per run and the medians; returns (text, ingest/bare ratio)."""
    ratio = median_ratio(runs, other, "bare echo")
    lines = [
        f"# Ingest benchmark ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, POST {args.path}, "
        f"{len(BODY)}-byte StreamStatusEvent; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, uvicorn --loop uvloop --http httptools, 1 worker.",
        "",
        f"target: {args.target or args.cmd or _builtin(args)}",
        "",
        *runs_table(runs),
        "",
        *medians_table(runs, ("bare echo", other)),
        "",
        ratio_line(other, "bare echo", ratio),
        "",
    ]
    return "\n".join(lines), ratio


# ---- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per target, alternated A/B")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded load first")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument(
        "--wrk-cpu",
        type=int,
        default=(os.cpu_count() or 1) - 1 if (os.cpu_count() or 1) > 1 else -1,
        help="pin wrk to this CPU with taskset (default: the last one; -1: not pinned)",
    )
    parser.add_argument("--path", default="/wcs/StreamStatusEvent", help="hook path to POST")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--target", help="base URL of an already running ingest (e.g. wcs-analytics run)"
    )
    group.add_argument("--cmd", help="command to start as the target; {port} becomes a free port")
    parser.add_argument(
        "--asgi",
        action="store_true",
        help="serve the built-in ingest app by plain uvicorn (the ASGI path) instead of the "
        "guard's protocol that run and ingest use (hooks answered from the parser callbacks)",
    )
    parser.add_argument("--serve-as-run", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/ingest.md")
    parser.add_argument("--min-ratio", type=float, help="exit 1 when target/bare is below this")
    return parser.parse_args(argv)


def _builtin(args: argparse.Namespace) -> str:
    how = "plain uvicorn: the ASGI path" if args.asgi else "the guard's protocol, as run serves it"
    return f"ingest app (create_app, InMemoryBus drained), {how}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_as_run is not None:
        serve_as_run(args.serve_as_run)
        return 0
    if shutil.which("wrk") is None:
        print("wrk not found; install with: apt-get install -y wrk", file=sys.stderr)
        return 2
    other = "target" if args.target or args.cmd else "ingest"
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "post.lua")
        Path(script).write_text(lua_script(BODY))
        bases = {"bare echo": stack.enter_context(uvicorn_server("echo_app"))}
        if args.target:
            bases[other] = args.target.rstrip("/")
            wait_ready(bases[other] + "/health", timeout=5)
        elif args.cmd:
            bases[other] = stack.enter_context(command_server(args.cmd))
        elif args.asgi:
            bases[other] = stack.enter_context(uvicorn_server("ingest_app", factory=True))
        else:
            bases[other] = stack.enter_context(served_as_run())
        for base in bases.values():
            if args.warmup > 0:
                run_wrk(args, script, base + args.path, args.warmup)
        runs = []
        for index in range(1, args.runs + 1):
            for target, base in bases.items():
                output = run_wrk(args, script, base + args.path, args.duration)
                runs.append(parse_wrk(output, target, index))
                print(f"run {index} {target}: {runs[-1].rps:,.0f} req/s", file=sys.stderr)
    text, ratio = report(args, runs, other)
    publish(text, args.output)
    return 1 if args.min_ratio is not None and ratio < args.min_ratio else 0


if __name__ == "__main__":
    sys.exit(main())
