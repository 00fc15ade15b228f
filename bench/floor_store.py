"""The replay floor: decode every envelope of an NDJSON file and store it raw in chDB.

``python bench/floor_store.py TRACE DATA_DIR`` -- what keeping only the raw ``events`` rows
costs (no processing): ``events.envelope.decode`` per line, the ``events`` rows inserted in
50 000-row inserts through the project's writer into a fresh chDB under DATA_DIR. Prints
``stored N envelopes in S s`` (the loop: read, decode, insert, last insert done). Used by
bench/replay_bench.py as the baseline of ``wcs-analytics replay``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from events.envelope import decode  # noqa: E402 -- after the sys.path fix above
from processors.clock import wall_ms  # noqa: E402
from sinks.client import connect  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.writer import ClickHouseWriter  # noqa: E402

BATCH = 50_000


def main(trace: Path, data_dir: Path) -> int:
    client = connect(f"chdb://{data_dir.resolve()}/chdb", "wcs")
    migrate(client, "wcs")
    writer = ClickHouseWriter(client, "wcs", max_rows=BATCH, now_ms=wall_ms)
    started, count = time.perf_counter(), 0
    chunk = []
    with trace.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            chunk.append(decode(line))
            if len(chunk) >= BATCH:
                writer.add_events(chunk)
                count += writer.flush()
                chunk = []
    writer.add_events(chunk)
    count += writer.flush()
    print(f"stored {count} envelopes in {time.perf_counter() - started:.3f}s")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
