"""What docs/metrics.md must name: every metric family a process serves on /metrics."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"


def undocumented(metrics: str) -> list[str]:
    """The families (``# TYPE`` lines) of a /metrics text that docs/metrics.md does not name."""
    served = {line.split()[2] for line in metrics.splitlines() if line.startswith("# TYPE ")}
    assert served, "no metric families in the text"
    documented = DOC.read_text()
    return sorted(name for name in served if f"`{name}" not in documented)
