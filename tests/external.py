"""External tools the suite needs but cannot install: skip with one line, or fail in CI.

Outside CI a missing tool (a Kafka broker, kcat, a headless browser) skips the test with a
one-line reason. ``.ci/run`` sets ``WCS_REQUIRE_<NAME>=1`` for each of them, which turns the
skip into a failure: a skipped test is a test that does not exist.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def require_flag(name: str) -> str:
    """The environment variable that makes tool ``name`` required (``WCS_REQUIRE_KCAT``)."""
    return f"WCS_REQUIRE_{name.upper()}"


def unavailable(name: str, reason: str) -> NoReturn:
    """Skip the test (or fail it when ``WCS_REQUIRE_<NAME>=1``) with a one-line reason."""
    flag = require_flag(name)
    if os.environ.get(flag) == "1":
        pytest.fail(f"{name} required ({flag}=1) but {reason}", pytrace=False)
    pytest.skip(f"no {name}: {reason}")


def tool(name: str, install_hint: str) -> str:
    """The path of executable ``name``; skips/fails the test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        unavailable(name, f"{name} not found on PATH ({install_hint})")
    return path
