"""Spool replay at start (``wcs_analytics.store.replay_spool``): a file goes only once what it
held is written."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_embedded import FakeEngine, envelope_n
from wcs_analytics.spool import OverflowSpool
from wcs_analytics.store import replay_spool


def _spooled(directory: Path, count: int) -> OverflowSpool:
    spool = OverflowSpool(directory)
    for n in range(count):
        spool.append(envelope_n(n))
    spool.rotate()
    return spool


def test_a_written_file_is_removed(tmp_path: Path) -> None:
    spool = _spooled(tmp_path / "spool", 5)
    engine = FakeEngine()
    assert replay_spool(engine, spool) == 5
    assert [e["id"] for batch in engine.batches for e in batch] == [f"id-{n}" for n in range(5)]
    assert engine.finished == 1 and spool.files() == []
    spool.close()


def test_a_file_whose_envelopes_were_not_written_stays(tmp_path: Path) -> None:
    """The processing process of `run` failed during the replay: finish answers False."""
    spool = _spooled(tmp_path / "spool", 5)
    files = spool.files()
    assert replay_spool(FakeEngine(finishes=False), spool) == 5
    assert spool.files() == files and files[0].exists()
    spool.close()
