"""Benchmark: re-running a finished 1,000,000-row job, which has nothing left to send.

Starts a sandbox on 127.0.0.1 (so the base URL is a real loopback one), generates a
1,000,000-row CSV, and records every one of its (fusebillId, geotabId) pairs as ``success`` in
the checkpoint through the checkpoint's own writer (``Checkpoint.open(out, base_url)`` then
``record_many`` in batches), as a completed run would have left it. Then it times
``python -m batch_latch run FILE --out DIR --no-progress`` as a subprocess, three times, with
``FUSEBILL_API_KEY`` and ``FUSEBILL_BASE_URL`` pointing at the sandbox: wall time (spawn to
reap), peak RSS (``os.wait4``, that one child), exit code, and ``requests`` from
``summary.json`` (must be 0; the sandbox's log must stay empty too).

Target: at most 3 s wall (judged on the median of the runs; the best is reported too).
Also shows that the checkpoint grows linearly: its size for 10k, 100k and 1M records.

    python bench/resume.py [--rows N] [--runs K] [--profile]

Scratch files go to ``bench/out/resume/`` (git-ignored). ``--profile`` adds one run under
cProfile and prints the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from _common import machine, profile, run_child
from batch_latch.jobfolder.checkpoint import FILENAME, Checkpoint, Record

from batch_latch.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "resume"
TARGET_WALL_S = 3.0
TIMEOUT_S = 300.0
BATCH = 100_000
FINISHED_AT = "2026-11-27T00:00:00Z"
SIZES = (10_000, 100_000, 1_000_000)
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


def build_checkpoint(out_dir: Path, base_url: str, rows: int) -> tuple[int, float]:
    """A completed run's checkpoint for rows 0..rows-1; returns (bytes, seconds)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    began = time.perf_counter()
    store = Checkpoint.open(out_dir, base_url)
    try:
        for start in range(0, rows, BATCH):
            records = [
                Record(*pair(i), "success", 200, "latched", "", FINISHED_AT, "new", "")
                for i in range(start, min(rows, start + BATCH))
            ]
            store.record_many(records)
    finally:
        store.close()
    return (out_dir / FILENAME).stat().st_size, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
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

    print("checkpoint size (written by Checkpoint.record_many, batches of 100,000):")
    sizes = sorted({*(n for n in SIZES if n < rows), rows})
    report_dir = OUT / "report"
    for n in sizes:
        where = report_dir if n == rows else OUT / f"checkpoint-{n}"
        size, seconds = build_checkpoint(where, base_url, n)
        print(
            f"  {n:>9,} records: {size:>11,} bytes, {size / n:6.1f} bytes/record "
            f"(written in {seconds:.1f} s)"
        )
    checkpoint_bytes = (report_dir / FILENAME).stat().st_size

    source = OUT / f"input-{rows}.csv"
    began = time.perf_counter()
    generate(source, rows)
    print(
        f"generated {source.relative_to(ROOT)}: {rows:,} rows, "
        f"{source.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - began:.1f} s"
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
        grown = (report_dir / FILENAME).stat().st_size - checkpoint_bytes
        right = code == 0 and summary["requests"] == 0 and success == rows and sent == 0
        ok = ok and right
        print(
            f"run {n}: exit {code}, wall {wall:.2f} s (CPU {cpu:.2f} s), "
            f"peak RSS {peak:.0f} MB, requests "
            f"(summary.json) {summary['requests']}, sandbox saw {sent}, success {success:,}, "
            f"checkpoint grew {grown} bytes" + ("" if right else "  <-- UNEXPECTED")
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
