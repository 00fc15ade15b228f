"""How many CPUs this process may use, and how many part processes ``replay --jobs auto`` starts.

The CPUs the scheduler lets this process run on (its affinity), capped by a cgroup CPU quota
when there is one: a container started with ``--cpus 2`` on a 16-core host sees 16 CPUs in
its affinity but gets the time of 2.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

MAX_JOBS = 64  # what --jobs accepts
AUTO_MAX_JOBS = 4  # tested up to 4, speed measured with 2; every part reads every line
CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def quota_cpus(quota: str, period: str) -> float | None:
    """CPUs a cgroup quota allows (``quota`` microseconds per ``period``); None: no limit
    (``max`` in cgroup v2, ``-1`` in v1) or not a quota."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpus() -> float | None:
    """This cgroup's CPU quota in CPUs, None when it has none or it cannot be read."""
    try:
        if CGROUP_V2.exists():
            quota, period = CGROUP_V2.read_text().split()[:2]
            return quota_cpus(quota, period)
        quota_path, period_path = CGROUP_V1
        if quota_path.exists():
            return quota_cpus(quota_path.read_text().strip(), period_path.read_text().strip())
    except (OSError, ValueError):  # unreadable or malformed: the affinity alone
        return None
    return None


def usable_cpus(affinity: int | None = None, quota: float | None = None) -> int:
    """The affinity (default: this process's), capped by ``quota`` rounded up; at least 1."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1
        )  # fmt: skip
    cpus = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, cpus)


def auto_jobs(cpus: int) -> int:
    """Part processes for ``replay --jobs auto`` on ``cpus`` usable CPUs."""
    return max(1, min(cpus, AUTO_MAX_JOBS))


def parse_jobs(value: str) -> int | None:
    """``--jobs``: a number, or ``auto`` (None: decided by ``auto_jobs``)."""
    if value == "auto":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--jobs must be a number or auto, got {value!r}") from None
