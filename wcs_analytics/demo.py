"""``make demo``: the service plus simulated WCS traffic, then a look at what landed.

Starts ``wcs-analytics run`` on a free port with its data under ``data/demo``,
POSTs a simulated trace to it as WCS would, stops it with SIGTERM (which
flushes everything) and prints a summary queried from ClickHouse.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLI = [sys.executable, "-m", "wcs_analytics.cli"]

SUMMARY = {
    "calls by disposition": "SELECT disposition, count() AS calls,"
    " round(avg(pdd_ms)) AS avg_pdd_ms, round(avg(talk_ms) / 1000, 1) AS avg_talk_s"
    " FROM calls FINAL GROUP BY disposition ORDER BY calls DESC",
    "streams": "SELECT kind, final_status, closed_by, count() AS streams,"
    " round(avg(lifetime_ms) / 1000, 1) AS avg_lifetime_s, max(keepalive_max_gap_ms) AS max_gap"
    " FROM streams FINAL GROUP BY kind, final_status, closed_by ORDER BY streams DESC",
    "keep-alive gaps": "SELECT count() AS gaps, max(gap_ms) AS longest_ms"
    " FROM keepalive_gaps FINAL",
    "messages": "SELECT direction, final_status, count() AS messages FROM messages FINAL"
    " GROUP BY direction, final_status ORDER BY messages DESC",
    "connections": "SELECT final_status, count() AS connections FROM connections FINAL"
    " GROUP BY final_status",
    "FAILED per family": "SELECT family, sum(count) AS failed FROM status_counts FINAL"
    " WHERE status = 'FAILED' GROUP BY family ORDER BY failed DESC",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"the service exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the service did not become healthy within 60 s")


def main() -> int:
    data = Path("data/demo")
    shutil.rmtree(data, ignore_errors=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"demo: starting wcs-analytics run on {url} (data in {data})", flush=True)
    proc = subprocess.Popen([*CLI, "run", "--port", str(port), "--data-dir", str(data)])
    try:
        _wait_healthy(url, proc)
        subprocess.run(
            [*CLI, "simulate", "--post", url, "--seed", "42", "--speed", "30"], check=True
        )
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
            hooks = [
                ln for ln in answer.read().decode().splitlines() if ln.startswith("wcs_hooks_total")
            ]
        print(f"demo: /metrics has {len(hooks)} hook counters, e.g. {hooks[:2]}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    for title, sql in SUMMARY.items():
        print(f"\n== {title}")
        subprocess.run([*CLI, "query", "--data-dir", str(data), sql], check=True)
    print(f"\ndemo: done. Query more with: .venv/bin/wcs-analytics query --data-dir {data} 'SQL'")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
