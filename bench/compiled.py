"""The compiled build for the benches: the wheel built from this checkout as ``pip install .``
builds it (setup.py compiles the per-event processing modules with mypyc), unpacked into a
directory with a ``wcs-analytics`` launcher that imports from there first.

The dev virtualenv is an editable, interpreted install; users get the wheel. A bench given
``--compiled`` measures the wheel with the dev virtualenv's interpreter and libraries.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv/bin/python")
LAUNCHER = """#!{python}
# runs the wheel unpacked here: this script's directory is first on sys.path
import sys
from wcs_analytics.cli import main
sys.exit(main())
"""


def build(into: Path, source: Path = ROOT) -> tuple[Path, str]:
    """Build the wheel of ``source`` (a checkout) and unpack it into ``into``; returns
    (package dir, CLI launcher path). Fails loudly when the build came out interpreted (no C
    compiler, WCS_ANALYTICS_PURE)."""
    wheels = into / "wheel"
    cmd = [PY, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"building the wheel failed:\n{done.stderr[-2000:]}")
    (wheel,) = wheels.glob("wcs_analytics-*.whl")
    packages = into / "compiled"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(packages)
    if not list((packages / "processors").glob("runtime.*.so")):
        raise SystemExit(f"{wheel.name} is not compiled (see setup.py: C compiler, headers)")
    cli = packages / "wcs-analytics"
    cli.write_text(LAUNCHER.format(python=PY))
    cli.chmod(0o755)
    print(f"compiled build: {wheel.name} unpacked in {packages}", file=sys.stderr)
    return packages, str(cli)


if __name__ == "__main__":
    # python bench/compiled.py OUT_DIR [SOURCE_CHECKOUT]: prints the launcher's path
    import argparse

    parser = argparse.ArgumentParser(description="build and unpack the compiled wheel")
    parser.add_argument("into", type=Path)
    parser.add_argument("source", type=Path, nargs="?", default=ROOT)
    args = parser.parse_args()
    print(build(args.into.resolve(), args.source.resolve())[1])
