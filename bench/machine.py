"""The machine's CPU as the benchmarks see it: busy jiffies, and waiting for it to go quiet.

On a 2-vCPU machine a target that is still working off its last load (a flush, chDB merges)
slows the next target measured. :func:`settle` waits until the whole machine is quiet
before each measured run, so that no target pays for another's work.
"""

from __future__ import annotations

import time
from pathlib import Path


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (/proc/stat; (0, 0) where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_share(busy0: int, total0: int, busy1: int, total1: int) -> float:
    """The busy share of the machine between two :func:`cpu_times` readings (0 if none)."""
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


def settle(max_busy: float = 0.15, window_s: float = 0.5, timeout_s: float = 30.0) -> float:
    """Wait until the machine is at most ``max_busy`` busy over ``window_s``; return the
    seconds waited (``timeout_s`` at most: a machine busy with other jobs does not hang
    the benchmark)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        before = cpu_times()
        time.sleep(window_s)
        if busy_share(*before, *cpu_times()) <= max_busy:
            break
    return time.monotonic() - start
