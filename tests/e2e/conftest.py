from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.service import Service


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for svc in started:
        if svc.proc is not None and svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait()


@pytest.fixture
def service(tmp_path: Path, service_factory: list[Service]) -> Service:
    svc = Service(tmp_path / "data")
    service_factory.append(svc)
    return svc.start()
