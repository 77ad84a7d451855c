"""Benchmark: re-running a finished job, which has nothing left to send (a no-op re-run).

Starts a sandbox on 127.0.0.1 (so the base URL is a real loopback one), generates a CSV
(20,000 rows by default), and builds the job's ledger ``OUT/job.db`` as a finished run
would have left it, through ``Ledger``'s public methods: the run's line in ``commands``
(``begin``), its input's valid rows (``remember_input``, keyed by the file's SHA-256 as the
CLI computes it), for every row a write intent (``writing``) and then its outcome
(``success``, ``new``) (``record_many``), and its end. Then it times ``python -m batch_latch
run FILE --out DIR --no-progress`` as a subprocess, three times, with ``FUSEBILL_API_KEY``
and ``FUSEBILL_BASE_URL`` pointing at the sandbox: wall time (spawn to reap), peak RSS
(``os.wait4``, that one child), exit code, ``requests`` from ``summary.json`` (must be 0; the
sandbox's log must stay empty too), and that the re-runs added no line to the ledger's log.

Target: at most 1 s wall for 20,000 rows (judged on the median; v3 re-run of a 20,000-row
job: 0.87 s). ``--rows 1000000`` gives the v3 1,000,000-row figure's counterpart (v3 3.78 s).

    python bench/resume.py [--rows N] [--runs K] [--profile]

Scratch files go to ``bench/out/resume/`` (git-ignored). ``--profile`` adds one run under
cProfile and prints the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import machine, profile, run_child

from batch_latch.jobfolder.ledger import FILENAME, WRITING, Entry, Ledger
from batch_latch.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "resume"
TARGET_WALL_S = 1.0
TIMEOUT_S = 300.0
BATCH = 100_000
FINISHED_AT = "2026-11-27T00:00:00Z"
_NAMES = ("ACME Haulage", "Northwind Fleet", "Blue Line Couriers", "Harbour Taxis")


def pair(i: int) -> tuple[int, str]:
    """Row i's values as sent: unique ids, one geotabId in ten with a leading zero."""
    return 1_000_000 + i, f"{(i * 7919) % 100_000_000:08d}"


def generate(path: Path, rows: int) -> None:
    """All rows valid and distinct, some as Excel leaves them (``.0``, padded cells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["fusebillId", "geotabId", "Account Name", "Notes"])
        batch: list[tuple[str, str, str, str]] = []
        for i in range(rows):
            fid, gid = pair(i)
            fid_text, gid_text = str(fid), gid
            if i % 1000 == 250:
                fid_text += ".0"
            elif i % 1000 == 333:
                gid_text = f" {gid}  "
            note = "renewal, Q3" if i % 7 == 0 else ""
            batch.append((fid_text, gid_text, f"{_NAMES[i % len(_NAMES)]} #{i % 9973}", note))
            if len(batch) >= 50_000:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)


def build_job(out_dir: Path, base_url: str, source: Path, rows: int) -> tuple[int, float]:
    """A finished run's ledger for rows 0..rows-1 of ``source``; returns (bytes, seconds)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    began = time.perf_counter()
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    ledger = Ledger.open(out_dir)
    try:
        command = ledger.begin(
            "20261127T000000Z-run",
            "run",
            started_at=FINISHED_AT,
            user="bench",
            input=str(source),
            input_sha256=sha,
            base_url=base_url,
        )
        fids = np.arange(1_000_000, 1_000_000 + rows, dtype=np.int64)
        gids = [pair(i)[1] for i in range(rows)]
        ledger.remember_input(sha, np.arange(2, rows + 2), fids, pa.array(gids))
        for start in range(0, rows, BATCH):
            entries: list[Entry] = []
            for i in range(start, min(rows, start + BATCH)):
                fid, gid = pair(i)
                entries.append(Entry(fid, gid, WRITING, "new", at=FINISHED_AT, row=i + 2))
                entries.append(
                    Entry(
                        fid, gid, "success", "new", "", "", 200, "latched", FINISHED_AT, i + 2, True
                    )
                )
            ledger.record_many(entries, command)
        ledger.end(command, ended_at=FINISHED_AT, exit_code=0, requests=rows + -(-rows // 100))
    finally:
        ledger.close()
    return db_bytes(out_dir), time.perf_counter() - began


def db_bytes(out_dir: Path) -> int:
    return sum(p.stat().st_size for p in out_dir.glob(FILENAME + "*") if p.is_file())


def log_lines(out_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(out_dir / FILENAME)) as con:
        return int(con.execute("SELECT count(*) FROM log").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one re-run")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    sandbox = Sandbox(SandboxConfig()).start()
    try:
        return measure(sandbox, args.rows, args.runs, args.profile)
    finally:
        sandbox.stop()


def measure(sandbox: Sandbox, rows: int, runs: int, with_profile: bool) -> int:
    base_url = sandbox.base_url
    print(f"sandbox: {base_url}")

    source = OUT / f"input-{rows}.csv"
    began = time.perf_counter()
    generate(source, rows)
    print(
        f"generated {source.relative_to(ROOT)}: {rows:,} rows, "
        f"{source.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - began:.1f} s"
    )
    report_dir = OUT / f"job-{rows}"
    size, seconds = build_job(report_dir, base_url, source, rows)
    lines = log_lines(report_dir)
    print(
        f"job.db of a finished run (Ledger.record_many, batches of {BATCH:,}): {size:,} bytes, "
        f"{lines:,} log lines, {size / rows:.1f} bytes a row (built in {seconds:.1f} s)"
    )

    env = dict(os.environ)
    env["FUSEBILL_API_KEY"] = sandbox.config.api_key
    env["FUSEBILL_BASE_URL"] = base_url
    cmd = [sys.executable, "-m", "batch_latch", "run", str(source), "--out", str(report_dir)]
    cmd.append("--no-progress")
    print("command: " + " ".join(cmd))
    walls: list[float] = []
    ok = True
    for n in range(1, runs + 1):
        child = run_child(
            cmd, cwd=ROOT, env=env, err_path=OUT / "child-stderr.txt", timeout=TIMEOUT_S
        )
        code, wall, peak, cpu = child.code, child.wall, child.rss_mb, child.cpu
        walls.append(wall)
        summary = json.loads((report_dir / "summary.json").read_text())
        success = summary["counts"].get("success")
        sent = len(sandbox.requests_log())
        grown = log_lines(report_dir) - lines
        right = (
            code == 0 and summary["requests"] == 0 and success == rows and sent == 0 and not grown
        )
        ok = ok and right
        print(
            f"run {n}: exit {code}, wall {wall:.2f} s (CPU {cpu:.2f} s), "
            f"peak RSS {peak:.0f} MB, requests "
            f"(summary.json) {summary['requests']}, sandbox saw {sent}, success {success:,}, "
            f"log lines added {grown}" + ("" if right else "  <-- UNEXPECTED")
        )
    best, median = min(walls), statistics.median(walls)
    print(f"wall time: best {best:.2f} s, median {median:.2f} s (target <= {TARGET_WALL_S:g} s)")
    if with_profile:
        profile(cmd, cwd=ROOT, env=env, stats=OUT / "resume.prof", timeout=TIMEOUT_S)
    passed = ok and median <= TARGET_WALL_S
    reasons = []
    if median > TARGET_WALL_S:
        reasons.append(f"median wall {median:.2f} s > {TARGET_WALL_S:g} s")
    if not ok:
        reasons.append("unexpected exit code, requests or counts")
    detail = "" if passed else " (" + "; ".join(reasons) + ")"
    print(("PASS" if passed else "FAIL") + f": re-run of {rows:,} finished rows" + detail)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
