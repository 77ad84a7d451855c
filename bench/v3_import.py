"""Benchmark: a 1,000,000-row v3 job folder taken into ``job.db`` by the first v4 command.

Writes a v3 job folder as a finished v3 run of 1,000,000 new rows left it: ``checkpoint.csv``
(format 3: for every row its write-ahead record ``writing`` and then its outcome ``success``,
``new``; 2,000,000 records) and the run's folder (``summary.json`` and ``outcomes.arrow``,
the sheet rows of each pair). Then, three times, copies that folder afresh (no ``job.db``)
and times ``python -m batch_latch status OUT --customer 1000000`` as a subprocess: the
first v4 command opens the job, which takes the v3 job in before it answers (one customer's
story, so that the time is the import's). Per run: wall time (spawn to reap), peak RSS
(``os.wait4``), exit code, that stderr said so while it happened (the line "Taking the v3
job in ..." is written before the import starts), the log lines in the new ``job.db`` (must
be 2,000,000, half of them ``success``) and its size.

Target: at most 30 s (median), with a line on stderr while it happens.

    python bench/v3_import.py [--rows N] [--runs K] [--profile]

Scratch files go to ``bench/out/v3_import/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
from _common import machine, profile, run_child
from resume import pair

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "v3_import"
BASE_URL = "http://127.0.0.1:9/v1"
TARGET_S = 30.0
TIMEOUT_S = 600.0
AT = "2026-11-27T10:00:00Z"
RUN = "20261127T100000.000Z-run"


def write_v3_job(job: Path, rows: int) -> None:
    shutil.rmtree(job, ignore_errors=True)
    folder = job / "runs" / RUN
    folder.mkdir(parents=True)
    with (job / "checkpoint.csv").open("w", encoding="utf-8", newline="") as handle:
        handle.write(f"#batch-latch-checkpoint,3,{BASE_URL}\n")
        lines = []
        for i in range(rows):
            fid, gid = pair(i)
            lines.append(f"{fid},{gid},writing,,,,new,,{AT}\n")
            lines.append(f"{fid},{gid},success,200,latched,,new,,{AT}\n")
            if len(lines) >= 100_000:
                handle.writelines(lines)
                lines.clear()
        handle.writelines(lines)
    table = pa.table(
        {
            "row": pa.array(range(2, rows + 2), pa.int64()),
            "fusebillId": pa.array([str(pair(i)[0]) for i in range(rows)]),
            "geotabId": pa.array([pair(i)[1] for i in range(rows)]),
            "status": pa.array(["success"] * rows).dictionary_encode(),
        }
    )
    feather.write_feather(table, str(folder / "outcomes.arrow"), compression="uncompressed")
    summary = {
        "kind": "run",
        "dry_run": False,
        "input": str(job / "input.csv"),
        "input_sha256": "0" * 64,
        "base_url": BASE_URL,
        "started_at": AT,
        "finished_at": AT,
        "user": "ops",
        "host": "vm",
        "exit_code": 0,
        "rows": rows,
        "requests": rows + -(-rows // 100),
        "counts": {"success": rows},
        "requests_by_day": {AT[:10]: rows + -(-rows // 100)},
    }
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")


def fresh_copy(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one import")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    source = OUT / f"v3-job-{args.rows}"
    began = time.perf_counter()
    write_v3_job(source, args.rows)
    size = (source / "checkpoint.csv").stat().st_size
    print(
        f"v3 job folder {source.relative_to(ROOT)}: checkpoint.csv {size:,} bytes "
        f"({2 * args.rows:,} records), one run folder; written in "
        f"{time.perf_counter() - began:.1f} s"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBILL_")}
    job = OUT / "job"
    cmd = [sys.executable, "-m", "batch_latch", "status", str(job), "--customer", "1000000"]
    print("command: python " + " ".join(cmd[1:]).replace(str(ROOT) + "/", ""))
    walls, ok = [], True
    for n in range(1, args.runs + 1):
        fresh_copy(source, job)
        err = OUT / "stderr.txt"
        child = run_child(cmd, cwd=ROOT, env=env, err_path=err, timeout=TIMEOUT_S)
        said = err.read_text(errors="replace")
        with contextlib.closing(sqlite3.connect(job / "job.db")) as con:
            lines = con.execute("SELECT count(*) FROM log").fetchone()[0]
            success = con.execute("SELECT count(*) FROM log WHERE status='success'").fetchone()
        db = sum(p.stat().st_size for p in job.glob("job.db*"))
        right = (
            child.code == 0
            and said.startswith("Taking the v3 job in")
            and lines == 2 * args.rows
            and success[0] == args.rows
        )
        ok = ok and right
        walls.append(child.wall)
        print(
            f"run {n}: exit {child.code}, wall {child.wall:.2f} s (CPU {child.cpu:.2f} s), peak "
            f"RSS {child.rss_mb:.0f} MB; job.db {db:,} bytes, {lines:,} log lines, "
            f"{success[0]:,} of them success; stderr first line: {said.splitlines()[0]!r}"
            + ("" if right else "  <-- UNEXPECTED")
            + f"  [{machine()}]"
        )
    median = statistics.median(walls)
    print(f"import: best {min(walls):.2f} s, median {median:.2f} s (target <= {TARGET_S:g} s)")
    if args.profile:
        fresh_copy(source, job)
        profile(cmd, cwd=ROOT, env=env, stats=OUT / "import.prof", timeout=TIMEOUT_S)
    passed = ok and median <= TARGET_S
    print(("PASS" if passed else "FAIL") + f": taking a {args.rows:,}-row v3 job into job.db")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
