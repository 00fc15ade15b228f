"""``replay --jobs N`` through the real CLI into chDB gives the tables of ``--jobs 1``: every
output table under FINAL (windows and alerts included), the stored state, the rejects;
a replay in parts may switch between N and 1; a part that dies stops it with a clear error.
"""

from __future__ import annotations

import gzip
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.catalog import resolve
from events.envelope import make
from sinks.state_store import WINDOWS, join_meta
from tests.e2e.service import CLI, _env, cli, query
from tests.e2e.test_lifecycle import long_sessions
from tests.integration.kafka_helpers import BIG_INT, big_int_line

pytestmark = pytest.mark.e2e

SECRET = "jobs-secret-7731"
Tables = dict[str, list[dict[str, Any]]]


def perturbed(lines: list[bytes]) -> list[bytes]:
    """The trace with what real capture files hold besides envelopes, scattered: lines
    that are no JSON or no envelope (some with a readable head), times that are not
    plausible, envelope keys that are not the entity's key (the line's owner is found by
    the body), a body integer beyond 64 bits, a secret to redact, blank lines; and a block
    of lines that comes late, at the end (windows already evaluated get late hits)."""
    rng = random.Random(11)
    calls = [orjson.loads(line) for line in lines if b'"CallStatusEvent"' in line][:40]
    extra: list[bytes] = [b"not json at all\n", b'{"v":1,"id":"no-key"}\n', b"\n", b"[1,2]\n"]
    for n, env in enumerate(calls):
        env = dict(env, id=f"{env['id']}-x{n}")
        if n % 4 == 0:
            extra.append(orjson.dumps(dict(env, key=f"not-the-call-{n}")) + b"\n")
        elif n % 4 == 1:
            extra.append(orjson.dumps(dict(env, family="nope")) + b"\n")
        elif n % 4 == 2:
            extra.append(orjson.dumps(dict(env, received_at=5 + n)) + b"\n")
        else:
            extra.append(orjson.dumps(dict(env, received_at=str(env["received_at"]))) + b"\n")
    secret = dict(calls[1], id="with-secret", body=dict(calls[1]["body"], sipPassword=SECRET))
    extra += [orjson.dumps(secret) + b"\n", big_int_line(lines[0])]
    out = list(lines)
    for line in extra:
        out.insert(rng.randrange(len(out)), line)
    n = len(out)  # a block of lines delivered late, after the rest: the time goes back
    out = out[: n // 5] + out[n // 5 + n // 30 :] + out[n // 5 : n // 5 + n // 30]
    return spiked(out)


def spiked(lines: list[bytes]) -> list[bytes]:
    """Two minutes of FAILED calls of one app in the middle of the trace (an alert fires),
    each line where its time falls in the file."""
    times = [orjson.loads(line)["received_at"] for line in lines[:: len(lines) // 2][1:2]]
    start = times[0] // 60_000 * 60_000 + 60_000
    spike: list[tuple[int, bytes]] = []
    for n in range(80):
        at = start + (n // 40) * 60_000 + (n % 40) * 1000
        body = {"nodeId": "node-9@192.0.2.9", "appKey": "spikyApp", "sessionId": f"sp{n}",
                "callId": f"spike-{n}", "caller": "a", "callee": "b"}  # fmt: skip
        for i, status in enumerate(("TRYING", "FAILED")):
            env = make(resolve("CallStatusEvent"), body | {"status": status}, at + i, f"sp{n}-{i}")
            spike.append((at + i, orjson.dumps(env) + b"\n"))
    out = list(lines)
    for at, line in sorted(spike, reverse=True):
        where = next(i for i, old in enumerate(out) if _time(old) > at)
        out.insert(where, line)
    return out


def _time(line: bytes) -> int:
    try:
        at = orjson.loads(line)["received_at"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0
    return at if isinstance(at, int) else 0


def replay(trace: Path, data: Path, jobs: int, *flags: str) -> tuple[str, list[bytes]]:
    rejects = data.parent / f"{data.name}.rejects"
    done = subprocess.run(
        [*CLI, "replay", str(trace), "--data-dir", str(data), "--jobs", str(jobs),
         "--rejects", str(rejects), *flags],
        capture_output=True, env=_env(None), timeout=300, check=False,
    )  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode in (0, 1) and "replayed" in done.stdout.decode(), err[-3000:]
    assert "replay part" not in err and "Traceback" not in err, err[-3000:]  # 1: rejects
    lines = rejects.read_bytes().splitlines() if rejects.exists() else []
    summary = done.stdout.decode().split(" in ")[0]  # "replayed N envelopes (R rejected lines)"
    return summary, lines  # in line order, with one process and with parts


READ_TABLES = """
import sys, orjson
from events.tables import OUTPUT_TABLES
from sinks.client import connect
client = connect("chdb://" + sys.argv[1], "wcs")
out = {}
for name in OUTPUT_TABLES:
    result = client.query(f"SELECT * EXCEPT version FROM wcs.{name} FINAL")
    rows = [dict(zip(result.column_names, row)) for row in result.result_rows]
    out[name] = sorted(orjson.dumps(r, default=str, option=orjson.OPT_SORT_KEYS) for r in rows)
sys.stdout.buffer.write(orjson.dumps({k: [r.decode() for r in v] for k, v in out.items()}))
"""


def read_tables(data: Path) -> Tables:
    """Every output table under FINAL without ``version``, rows as sorted JSON (one process
    for all tables: chDB allows one data path per process, and this one holds none)."""
    done = subprocess.run(
        [sys.executable, "-c", READ_TABLES, str((data / "chdb").resolve())],
        capture_output=True, env=_env(None), timeout=120, check=True,
    )  # fmt: skip
    tables: dict[str, list[str]] = orjson.loads(done.stdout)
    return {name: [orjson.loads(row) for row in rows] for name, rows in tables.items()}


def stored_state(data: Path) -> dict[str, Any]:
    """The state a later run continues: each entity's latest state, the partition's meta
    (its windows and the alert stage's pending window rows in a canonical order)."""
    rows = query(data, "SELECT family, key, argMax(state, version) AS s, argMax(open, version) "
                       "AS o FROM entity_state GROUP BY family, key")  # fmt: skip
    minutes = {int(r["key"].rpartition("@")[2]): r["s"] for r in rows if r["family"] == WINDOWS}
    out = {f"{r['family']}/{r['key']}": (orjson.loads(r["s"]), r["o"]) for r in rows
           if r["family"] != WINDOWS}  # fmt: skip
    meta = join_meta(out.pop("/embedded")[0], minutes)
    meta["windows"]["windows"].sort(key=lambda w: orjson.dumps(w[:3]))
    meta["stage"]["pending"].sort(key=orjson.dumps)
    return {"meta": meta, "entities": out}


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobs")
    plain = root / "plain.ndjson"
    cli("simulate", "--out", str(plain), "--seed", "5", "--scale", "4")
    path = root / "trace.ndjson"
    path.write_bytes(b"".join(perturbed(plain.read_bytes().splitlines(keepends=True))))
    return path


@pytest.fixture(scope="module")
def serial(trace: Path) -> tuple[Path, str, list[bytes], Tables]:
    data = trace.parent / "serial"
    summary, rejects = replay(trace, data, 1)
    return data, summary, rejects, read_tables(data)


@pytest.mark.parametrize("jobs,flags", [(2, ()), (3, ("--batch-rows", "3000"))])
def test_jobs_give_the_tables_state_and_rejects_of_one(
    trace: Path, serial: tuple[Path, str, list[bytes], Tables], jobs: int, flags: tuple[str, ...]
) -> None:
    """With 3 jobs the parts also flush many times on the way (checkpoints summed)."""
    want_dir, want_summary, want_rejects, want = serial
    data = trace.parent / f"jobs-{jobs}"
    summary, rejects = replay(trace, data, jobs, *flags)
    assert summary == want_summary and "(33 rejected lines)" in summary, summary  # 3 + 3 x 10
    assert rejects == want_rejects
    got = read_tables(data)
    for table, rows in want.items():
        assert got[table] == rows, table
    assert len(got["alerts"]) > 0 and len(got["status_counts"]) > 100
    assert stored_state(data) == stored_state(want_dir)
    bodies = [row["body"] for row in got["events"]]
    assert sum(BIG_INT.decode() in body for body in bodies) == 1
    assert not any(SECRET in body for body in bodies)
    assert not any(SECRET.encode() in line for line in rejects)


@pytest.mark.parametrize("first,second", [(2, 1), (1, 3), (4, 2)])
def test_a_replay_in_parts_may_change_the_number_of_jobs(
    trace: Path, serial: tuple[Path, str, list[bytes], Tables], first: int, second: int
) -> None:
    """The stored state is one runtime's whatever N wrote it (open sessions, windows,
    the alert stage), so the second half continues it with any N."""
    lines = trace.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    parts = [trace.parent / f"half-{first}-{second}-{i}.ndjson" for i in (1, 2)]
    parts[0].write_bytes(b"".join(lines[:half]))
    parts[1].write_bytes(b"".join(lines[half:]))
    data = trace.parent / f"parts-{first}-{second}"
    replay(parts[0], data, first)
    replay(parts[1], data, second)
    assert read_tables(data) == serial[3]


def test_real_ends_after_timeouts_find_their_evicted_sessions(tmp_path: Path) -> None:
    """Sessions closed by their timeouts are evicted from the parts' memory; their real
    ends (hours later, in the same file or the next one) are looked up in the store."""
    lines = long_sessions()
    whole, first, second = (tmp_path / f"{n}.ndjson" for n in ("whole", "first", "second"))
    whole.write_bytes(b"\n".join(lines) + b"\n")
    first.write_bytes(b"\n".join(lines[:60]) + b"\n")
    second.write_bytes(b"\n".join(lines[60:]) + b"\n")
    replay(whole, tmp_path / "one", 1)
    replay(whole, tmp_path / "two", 2)
    replay(first, tmp_path / "split", 2)
    replay(second, tmp_path / "split", 3)
    want = read_tables(tmp_path / "one")
    assert read_tables(tmp_path / "two") == want
    assert read_tables(tmp_path / "split") == want
    calls = {r["call_id"]: r for r in want["calls"]}
    assert calls["c-1"]["closed_by"] == "event" and calls["c-1"]["talk_ms"] == 13 * 3_600_000


def test_a_part_that_dies_stops_the_replay_with_a_clear_error(trace: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [*CLI, "replay", str(trace), "--data-dir", str(data), "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(None),
    )  # fmt: skip
    children: list[int] = []
    deadline = time.monotonic() + 60
    while len(children) < 2 and time.monotonic() < deadline and proc.poll() is None:
        found = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        children = [int(pid) for pid in found.read_text().split()] if found.exists() else []
        time.sleep(0.01)
    assert len(children) >= 2, "no part processes seen"
    os.kill(children[1], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert b"replay part 1 exited (exit code -9)" in err, err[-2000:]
    assert b"Traceback" not in err  # the error, not a stack of the parent
    assert query(data, "SELECT count() AS n FROM events")[0]["n"] >= 0  # the lock is free


@pytest.mark.parametrize(
    "flags,message",
    [
        (("--jobs", "0"), b"--jobs must be 1 to 64"),
        (("--jobs", "two"), b"--jobs must be a number or auto, got 'two'"),
        (("--jobs", "2", "--kafka", "localhost:1"), b"--jobs is for replay into ClickHouse"),
    ],
)
def test_bad_jobs_are_refused(
    trace: Path, tmp_path: Path, flags: tuple[str, ...], message: bytes
) -> None:
    done = subprocess.run(
        [*CLI, "replay", str(trace), "--data-dir", str(tmp_path / "d"), *flags],
        capture_output=True, env=_env(None), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize("cpus", [1, 2])
def test_jobs_default_to_the_usable_cpus(
    trace: Path, serial: tuple[Path, str, list[bytes], Tables], tmp_path: Path, cpus: int
) -> None:
    """No ``--jobs``: one part process per CPU the replay may run on (its affinity here),
    none on one CPU."""
    if len(os.sched_getaffinity(0)) < cpus:
        pytest.fail(f"this machine has fewer than {cpus} CPUs")
    allowed = set(sorted(os.sched_getaffinity(0))[:cpus])
    done = subprocess.run(
        [*CLI, "replay", str(trace), "--data-dir", str(tmp_path / "d")],
        capture_output=True, env=_env(None), timeout=300, check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, allowed),
    )  # fmt: skip
    out = done.stdout.decode()
    assert done.returncode == 1 and out.startswith(serial[1] + " in "), done.stderr[-2000:]
    assert out.rstrip().endswith(" by 2 part processes") == (cpus == 2), out


def _replay_piped(trace: Path, data: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    """``cat TRACE | wcs-analytics replay /dev/stdin ...``"""
    cat = subprocess.Popen(["cat", str(trace)], stdout=subprocess.PIPE)
    assert cat.stdout is not None
    try:
        return subprocess.run(
            [*CLI, "replay", "/dev/stdin", "--data-dir", str(data), *flags],
            stdin=cat.stdout, capture_output=True, env=_env(None), timeout=300, check=False,
        )  # fmt: skip
    finally:
        cat.stdout.close()
        cat.wait()


def _by_one_process(
    done: subprocess.CompletedProcess[bytes],
    data: Path,
    serial: tuple[Path, str, list[bytes], Tables],
) -> None:
    """A replay by one process (progress in MB read) with the summary and tables of the
    plain file's replay (exit 1: the trace has rejects)."""
    out = done.stdout.decode()
    assert done.returncode == 1 and out.startswith(serial[1] + " in "), done.stderr[-2000:]
    assert "part processes" not in out and b"MB read" in done.stderr
    assert read_tables(data) == serial[3]


def test_a_pipe_is_replayed_by_one_process(
    trace: Path, serial: tuple[Path, str, list[bytes], Tables], tmp_path: Path
) -> None:
    """``zcat day.ndjson.gz | wcs-analytics replay /dev/stdin``: read once, so by one
    process, with the tables of the file's replay; parts need a file they can all read."""
    data = tmp_path / "piped"
    _by_one_process(_replay_piped(trace, data), data, serial)
    refused = _replay_piped(trace, tmp_path / "d", "--jobs", "2")
    assert refused.returncode == 2 and b"--jobs 2 needs a regular file" in refused.stderr
    out_of_range = _replay_piped(trace, tmp_path / "d", "--jobs", "0")
    assert out_of_range.returncode == 2 and b"--jobs must be 1 to 64" in out_of_range.stderr


def test_a_compressed_file_is_replayed_as_the_plain_one(
    trace: Path, serial: tuple[Path, str, list[bytes], Tables], tmp_path: Path
) -> None:
    """``wcs-analytics replay day.ndjson.gz`` (rotated logs are compressed): recognised by its
    first bytes, the tables of the plain file's replay, by one process or by parts that each
    decompress it. Cut short (a copy still being written): the lines before the cut are
    replayed, the reason is said, exit 1; one process and parts stop at the same line."""
    packed = tmp_path / "day.ndjson.gz"
    packed.write_bytes(gzip.compress(trace.read_bytes()))
    _by_one_process(_run_replay(packed, tmp_path / "one", "--jobs", "1"), tmp_path / "one", serial)
    done = _run_replay(packed, tmp_path / "two", "--jobs", "2")
    out = done.stdout.decode()
    assert done.returncode == 1 and out.startswith(serial[1] + " in "), done.stderr[-2000:]
    assert out.rstrip().endswith("by 2 part processes") and b"MB read" in done.stderr
    assert read_tables(tmp_path / "two") == serial[3]

    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    stops = []
    for jobs in (1, 2):
        done = _run_replay(cut, tmp_path / f"cut{jobs}", "--jobs", str(jobs))
        assert done.returncode == 1, done.stderr[-2000:]
        assert b"unreadable after line " in done.stderr and b"EOFError" in done.stderr
        stops.append(int(done.stderr.split(b"unreadable after line ", 1)[1].split(b" ", 1)[0]))
    assert stops[0] == stops[1] and 1000 < stops[0] < len(trace.read_bytes().splitlines())
    head = tmp_path / "head.ndjson"  # the lines before the cut, replayed from a plain file
    head.write_bytes(b"".join(trace.read_bytes().splitlines(keepends=True)[: stops[0]]))
    _run_replay(head, tmp_path / "head", "--jobs", "1")
    want = read_tables(tmp_path / "head")
    assert read_tables(tmp_path / "cut1") == want and read_tables(tmp_path / "cut2") == want


def test_a_binary_file_is_rejected_line_by_line_by_parts(tmp_path: Path) -> None:
    """Not a log at all (a zstd- or bzip2-compressed one, which replay does not unpack):
    every "line" is rejected, in order, and the replay ends. The parts' checks then carry
    megabytes of bad lines; they and this process used to wait for ever, each blocked writing
    to a pipe the other was not reading."""
    junk = tmp_path / "day.ndjson.zst"
    junk.write_bytes(random.Random(7).randbytes(3_000_000))
    rejects = tmp_path / "rejects"
    done = _run_replay(junk, tmp_path / "d", "--jobs", "2", "--rejects", str(rejects))
    out = done.stdout.decode()
    assert done.returncode == 1 and out.startswith("replayed 0 envelopes ("), done.stderr[-2000:]
    assert out.rstrip().endswith("by 2 part processes")
    with junk.open("rb") as handle:  # lines as replay reads them: split at b"\n" only
        lines = [line for line in handle if line.strip()]
    assert f"({len(lines)} rejected lines)" in out
    assert rejects.read_bytes() == b"".join(lines) + (b"" if lines[-1].endswith(b"\n") else b"\n")


def _run_replay(path: Path, data: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "replay", str(path), "--data-dir", str(data), *flags],
        capture_output=True, env=_env(None), timeout=120, check=False,
    )  # fmt: skip


def _replay_files(files: list[Path], data: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "replay", *map(str, files), "--data-dir", str(data), *flags],
        capture_output=True, env=_env(None), timeout=300, check=False,
    )  # fmt: skip


def test_the_logs_of_several_nodes_are_merged_by_time(trace: Path, tmp_path: Path) -> None:
    """``replay node1.ndjson node2.ndjson``: the two nodes' logs of one trace give the tables
    of the whole trace, by one process and by parts, in any order of the files; a bad line
    is reported with its file and line. Replayed one after the other they do not: the
    second node's input is behind the clock the first one moved."""
    plain = trace.parent / "plain.ndjson"  # simulated, in time order
    want_dir = tmp_path / "whole"
    assert _replay_files([plain], want_dir, "--jobs", "1").returncode == 0
    want = read_tables(want_dir)
    lines = plain.read_bytes().splitlines(keepends=True)
    nodes = sorted({orjson.loads(line)["node_id"] for line in lines})
    assert len(nodes) == 2, nodes
    files = [tmp_path / f"node{i}.ndjson" for i in (1, 2)]
    for file, node in zip(files, nodes, strict=True):
        file.write_bytes(b"".join(line for line in lines if orjson.loads(line)["node_id"] == node))
    mine = files[1].read_bytes().splitlines(keepends=True)
    files[1].write_bytes(b"".join(mine[:5]) + b"not an envelope\n" + b"".join(mine[5:]))
    for jobs, order in ((1, files), (2, files[::-1])):
        data = tmp_path / f"merged-{jobs}"
        done = _replay_files(order, data, "--jobs", str(jobs))
        err = done.stderr.decode()
        assert done.returncode == 1, err[-2000:]  # the bad line
        assert f"{files[1]}:6: not replayed: " in err, err[-2000:]
        assert done.stdout.decode().startswith(f"replayed {len(lines)} envelopes (1 rejected")
        assert read_tables(data) == want, jobs
    one_after_the_other = tmp_path / "sequential"
    for file in files:
        _replay_files([file], one_after_the_other, "--jobs", "1")
    assert read_tables(one_after_the_other) != want
    twice = _replay_files([files[0], files[1], files[0]], tmp_path / "twice")
    assert twice.returncode == 2 and b"is given twice" in twice.stderr


def test_many_files_are_merged_within_the_open_files_limit(trace: Path, tmp_path: Path) -> None:
    """Every process reading the input keeps all its files open: the soft open-files limit is
    raised to the hard one; beyond what that allows the replay is refused with what to do."""
    lines = (trace.parent / "plain.ndjson").read_bytes().splitlines(keepends=True)[:1200]
    files = [tmp_path / f"hour-{i:03d}.ndjson" for i in range(400)]
    for i, file in enumerate(files):
        file.write_bytes(b"".join(lines[i * 3 : i * 3 + 3]))

    def limited(soft: int, hard: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*CLI, "replay", *map(str, files), "--data-dir", str(tmp_path / f"d{hard}"),
             "--jobs", "2"],
            capture_output=True, env=_env(None), timeout=300, check=False,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
        )  # fmt: skip

    refused = limited(300, 300)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert b"400 files cannot be merged at once under the open-files limit of 300" in refused.stderr
    merged = limited(300, 4096)
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert merged.stdout.startswith(b"replayed 1200 envelopes (0 rejected lines)")
