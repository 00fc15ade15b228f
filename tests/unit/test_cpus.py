"""The CPUs ``replay --jobs auto`` counts: affinity capped by a cgroup quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from wcs_analytics import cpus


def test_quota_in_cpus() -> None:
    assert cpus.quota_cpus("200000", "100000") == 2.0
    assert cpus.quota_cpus("150000", "100000") == 1.5
    assert cpus.quota_cpus("max", "100000") is None  # cgroup v2: no limit
    assert cpus.quota_cpus("-1", "100000") is None  # cgroup v1: no limit
    assert cpus.quota_cpus("100000", "0") is None


def test_usable_cpus_are_the_affinity_capped_by_the_quota_rounded_up() -> None:
    assert cpus.usable_cpus(16) == 16
    assert cpus.usable_cpus(16, quota=2.0) == 2
    assert cpus.usable_cpus(16, quota=1.5) == 2
    assert cpus.usable_cpus(2, quota=8.0) == 2
    assert cpus.usable_cpus(4, quota=0.25) == 1
    assert cpus.usable_cpus() >= 1  # this process's affinity


def test_auto_jobs_use_the_cpus_up_to_the_cap() -> None:
    assert [cpus.auto_jobs(n) for n in (1, 2, 3, 4, 64)] == [1, 2, 3, 4, cpus.AUTO_MAX_JOBS]
    assert cpus.AUTO_MAX_JOBS == 4


def test_parse_jobs() -> None:
    assert cpus.parse_jobs("auto") is None
    assert cpus.parse_jobs("3") == 3
    with pytest.raises(ValueError, match="--jobs must be a number or auto, got 'x'"):
        cpus.parse_jobs("x")


@pytest.mark.parametrize(
    "v2,v1,want",
    [
        ("max 100000\n", None, None),
        ("300000 100000\n", None, 3.0),
        (None, ("50000\n", "100000\n"), 0.5),
        (None, ("-1\n", "100000\n"), None),
        (None, None, None),
        ("garbage\n", None, None),
    ],
)
def test_cgroup_quota_read_from_v2_or_v1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    v2: str | None,
    v1: tuple[str, str] | None,
    want: float | None,
) -> None:
    v2_path = tmp_path / "cpu.max"
    quota, period = tmp_path / "cfs_quota_us", tmp_path / "cfs_period_us"
    if v2 is not None:
        v2_path.write_text(v2)
    if v1 is not None:
        quota.write_text(v1[0])
        period.write_text(v1[1])
    monkeypatch.setattr(cpus, "CGROUP_V2", v2_path)
    monkeypatch.setattr(cpus, "CGROUP_V1", (quota, period))
    assert cpus.cgroup_cpus() == want
