"""Run the real `wcs-analytics` as a subprocess; read its data once it stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

CLI = [sys.executable, "-m", "wcs_analytics.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCS_")}
    env.update(extra or {})
    return env


@dataclass
class Service:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] | None = None
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"service-{self.port}.log"

    def start(self, timeout_s: float = 60.0) -> Service:
        cmd = [*CLI, "run", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(self.env))
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError(f"service not healthy within {timeout_s}s: {self.log()}")

    def stop(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def cli(*args: str, env: dict[str, str] | None = None, timeout_s: float = 300) -> str:
    done = subprocess.run(
        [*CLI, *args], capture_output=True, env=_env(env), timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {done.returncode}: {done.stderr.decode()[-3000:]}")
    return done.stdout.decode()


def query(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` from a stopped embedded service's data directory."""
    out = cli("query", "--data-dir", str(data_dir), "--format", "jsonl", sql)
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]
