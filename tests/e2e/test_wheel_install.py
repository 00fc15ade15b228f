"""The install users get: the wheel, installed without extras into a clean virtualenv.

The wheel is compiled (setup.py: the per-event processing modules through mypyc), so this
module also proves the compiled modules behave like the source: the unit suite runs
against them, and a replay through the installed CLI gives the rows of a replay from source.

Builds the wheel from this checkout (as ``pip install .`` does), installs it into a fresh
``python -m venv`` (no system site-packages, no dev extras), then runs every subcommand's
``--help`` and a small ``simulate`` -> ``replay`` -> ``query`` round trip into chDB, from a
directory outside the checkout so nothing is imported from the source tree.

The virtualenv with the runtime dependencies is cached under pytest's cache directory, keyed
by the wheel's runtime requirements and the Python version: a later run only reinstalls the
wheel itself (``--no-deps``); a changed dependency list builds a new virtualenv.
"""

from __future__ import annotations

import ast
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

from events.tables import OUTPUT_TABLES

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
    for name in ("pyproject.toml", "setup.py", "README.md"):
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
    _run(cli, "replay", trace, "--data-dir", data, "--jobs", "1", cwd=tmp_path)
    envelopes = sum(1 for line in trace.read_bytes().splitlines() if line.strip())
    count = _run(cli, "query", "--data-dir", data, "SELECT count() FROM events", cwd=tmp_path)
    assert count.split() == ["count()", str(envelopes)]

    # the same trace replayed from the source tree (interpreted) gives the same rows, and so
    # does the installed CLI in two part processes (compiled states cross processes as text)
    source_data, jobs_data = tmp_path / "source-data", tmp_path / "jobs-data"
    here = [sys.executable, "-m", "wcs_analytics.cli"]
    _run(*here, "replay", trace, "--data-dir", source_data, "--jobs", "1", cwd=ROOT)
    summary = _run(cli, "replay", trace, "--data-dir", jobs_data, "--jobs", "2", cwd=tmp_path)
    assert summary.rstrip().endswith("by 2 part processes"), summary
    for table in OUTPUT_TABLES:
        sql = f"SELECT * FROM {table} FINAL ORDER BY ALL"
        compiled = _run(cli, "query", "--data-dir", data, sql, cwd=tmp_path)
        interpreted = _run(*here, "query", "--data-dir", source_data, sql, cwd=ROOT)
        assert compiled == interpreted, table
        assert _run(cli, "query", "--data-dir", jobs_data, sql, cwd=tmp_path) == compiled, table
        if table in ("calls", "streams", "messages", "connections", "status_counts"):
            assert len(compiled.splitlines()) > 2, table  # rows to compare


def _compiled_modules() -> list[str]:
    """``COMPILED`` of setup.py (read, not imported: importing it runs the build)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            found = ast.literal_eval(node.value)
            assert isinstance(found, list) and found
            return [str(path) for path in found]
    raise AssertionError("setup.py has no COMPILED list")


def test_wheel_holds_the_compiled_processing_modules(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for source in _compiled_modules():
        stem = source.removesuffix(".py")
        assert any(n.startswith(stem + ".cpython-") and n.endswith(".so") for n in names), stem
        assert source in names  # the source ships too (tracebacks, readers)


def test_unit_suite_passes_against_the_compiled_modules(wheel: Path, tmp_path: Path) -> None:
    """The wheel's packages (compiled) next to a copy of the tests: nothing from the source
    tree is importable there, and a probe test fails the run if a module was interpreted."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("tests", "deploy", "docs", "bench"):
        shutil.copytree(
            ROOT / folder,
            tmp_path / folder,
            ignore=shutil.ignore_patterns("__pycache__", "results"),
        )
    modules = [p.removesuffix(".py").replace("/", ".") for p in _compiled_modules()]
    (tmp_path / "tests" / "unit" / "test_zz_compiled_probe.py").write_text(
        "import importlib\n\n"
        f"def test_modules_are_compiled():\n    for name in {modules!r}:\n"
        "        assert importlib.import_module(name).__file__.endswith('.so'), name\n"
    )
    out = _run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit",
        cwd=tmp_path, timeout_s=900,
    )  # fmt: skip
    assert re.search(r"\b\d+ passed\b", out) and " failed" not in out, out[-2000:]
    assert "test_zz_compiled_probe" not in out  # ran and passed (-q names failures only)
