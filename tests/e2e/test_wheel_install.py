"""The install users get: the wheel, installed without extras into a clean virtualenv.

Builds the wheel from this checkout (as ``pip install .`` does), installs it into a fresh
``python -m venv`` (no system site-packages, no dev extras), then runs every subcommand's
``--help`` and a small ``simulate`` -> ``replay`` -> ``query`` round trip into chDB, from a
directory outside the checkout so nothing is imported from the source tree.

The virtualenv with the runtime dependencies is cached under pytest's cache directory, keyed
by the wheel's runtime requirements and the Python version: a later run only reinstalls the
wheel itself (``--no-deps``); a changed dependency list builds a new virtualenv.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


def _run(*command: str | Path, cwd: Path, timeout_s: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCS_", "PYTHON", "VIRTUAL"))}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def _runtime_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    lines = re.findall(r"^Requires-Dist: (.+)$", metadata, re.MULTILINE)
    return sorted(line for line in lines if "extra ==" not in line)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # what deploy/Dockerfile copies, into a fresh tree: no stale build/ from an earlier build
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("events", "ingest", "processors", "sinks", "wcs_analytics"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, source, cwd=out)
    (built,) = out.glob("wcs_analytics-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, request: pytest.FixtureRequest) -> Path:
    """The ``bin`` directory of a clean virtualenv with the wheel installed (no extras)."""
    key_text = "\n".join([sys.version, *_runtime_requirements(wheel)])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    home = Path(request.config.cache.mkdir("wheel-venv")) / key
    python, ready = home / "bin" / "python", home / ".complete"
    if not ready.exists():
        venv.EnvBuilder(clear=True, with_pip=True, system_site_packages=False).create(home)
        _run(python, "-m", "pip", "install", "-q", wheel, cwd=home)
        ready.touch()
    else:
        _run(
            python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel, cwd=home
        )
    return home / "bin"


def test_clean_install_runs_every_command(installed: Path, tmp_path: Path) -> None:
    cli = installed / "wcs-analytics"
    python = installed / "python"
    # nothing from the checkout or the dev virtualenv is importable there
    probe = (
        "import importlib.util as u, wcs_analytics; "
        "print(wcs_analytics.__file__, bool(u.find_spec('pytest')))"
    )
    where, has_pytest = _run(python, "-c", probe, cwd=tmp_path).split()
    assert str(installed.parent) in where and has_pytest == "False"

    usage = _run(cli, "--help", cwd=tmp_path)
    commands = re.search(r"\{([a-z,]+)\}", usage)
    assert commands is not None, usage
    names = commands.group(1).split(",")
    assert {"run", "ingest", "worker", "replay", "simulate", "dashboard", "query"} <= set(names)
    for name in names:
        assert _run(cli, name, "--help", cwd=tmp_path).startswith("usage:"), name

    trace = tmp_path / "trace.ndjson"
    _run(cli, "simulate", "--out", trace, "--scale", "0.05", "--minutes", "6", cwd=tmp_path)
    data = tmp_path / "data"
    _run(cli, "replay", trace, "--data-dir", data, cwd=tmp_path)
    envelopes = sum(1 for line in trace.read_bytes().splitlines() if line.strip())
    count = _run(cli, "query", "--data-dir", data, "SELECT count() FROM events", cwd=tmp_path)
    assert count.split() == ["count()", str(envelopes)]
