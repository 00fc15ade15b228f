"""Build hook: the per-event processing modules are compiled with mypyc when a C compiler is
there (about twice the events per second of the same modules interpreted; docs/processing.md
#compiled). The compiled modules are the same source: every test runs against both builds.

- ``WCS_ANALYTICS_PURE=1`` (or no C compiler / no Python headers): a pure-Python build.
- Editable installs are pure (``make venv`` sets ``WCS_ANALYTICS_PURE=1``; a plain
  ``pip install -e`` is detected), so an edited module is what runs: a compiled extension
  next to it in the tree would shadow it.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

# the modules a batch goes through per event or per entity (pure: no IO, no asyncio, no
# introspection)
COMPILED = [
    "processors/calls.py",
    "processors/clock.py",
    "processors/config.py",
    "processors/connections.py",
    "processors/entity.py",
    "processors/families.py",
    "processors/keepalive.py",
    "processors/messages.py",
    "processors/runtime.py",
    "processors/side.py",
    "processors/state_codec.py",
    "processors/streams.py",
    "processors/values.py",
    "processors/windows.py",
    "sinks/key_filter.py",
]


def _why_pure() -> str | None:
    if os.environ.get("WCS_ANALYTICS_PURE", "") not in ("", "0"):
        return "WCS_ANALYTICS_PURE is set"
    if any(arg.startswith("editable") for arg in sys.argv) or "develop" in sys.argv:
        return "editable install"
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (Python.h)"
    return None


def _ext_modules() -> list[object]:
    why = _why_pure()
    if why is not None:
        print(f"wcs-analytics: pure-Python build ({why})", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    # the build environment has mypy but not the runtime libraries: their types are Any here
    paths = ["--ignore-missing-imports", *COMPILED]
    return list(mypycify(paths, opt_level="3", group_name="wcs_analytics_native"))


setup(ext_modules=_ext_modules())
