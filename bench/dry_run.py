"""Benchmark: ``batch-latch run FILE --dry-run`` on a 1,000,000-row CSV, end to end.

Generates a realistic spreadsheet export (fusebillId, geotabId with leading zeros, two extra
text columns, a sprinkle of invalid rows, duplicates, Excel ``.0`` artefacts, padded cells and
blank lines), then runs ``python -m batch_latch run FILE --dry-run --out DIR`` as a subprocess
three times. For each run it measures the wall time (``time.perf_counter`` from spawn to reap)
and the child's peak RSS from ``os.wait4``, which returns the rusage of that one child only
(unlike ``getrusage(RUSAGE_CHILDREN)``, whose ``ru_maxrss`` is a maximum over every child ever
reaped, so it cannot tell run 2 from run 1).

v4: each run must leave ``OUT/job.db`` with its command and nothing else: no per-row
events (``log``) and no input rows (a dry run needs neither).

Target (issue 9, contract v2): at most 2 s wall and 500 MB peak RSS (v1: 6 s, 700 MB). PASS
is judged on the median wall time of the runs and on the largest peak RSS of the runs; the
best wall time is reported too.

    python bench/dry_run.py [--rows N] [--runs K] [--profile]

Scratch files go to ``bench/out/dry_run/`` (git-ignored). ``--profile`` adds one run under
cProfile and prints the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from _common import machine, profile, run_child

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "dry_run"
TARGET_WALL_S = 2.0
TARGET_RSS_MB = 500.0
TIMEOUT_S = 300.0

_NAMES = (
    "ACME Haulage",
    "Northwind Fleet",
    "Blue Line Couriers",
    "Harbour Taxis",
    "Prairie Freight",
    "Maple Leaf Logistics",
    "Granite Transport",
    "Stolen Bikes",
)
_NOTES = ("", "", "", "renewal, Q3", "moved from legacy billing", 'said "asap"', "", "")
_BAD_IDS = ("1.27E+07", "12,717,595", "-5", "", "abc", "1_000", "١٢٣", "3.5")


def generate(path: Path, rows: int) -> dict[str, int]:
    """Write the CSV; return how many rows of each kind it has (expected statuses)."""
    expected = {"valid": 0, "invalid": 0, "duplicate": 0, "blank_lines": 0}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["Fusebill ID", "Geotab Reseller Customer ID", "Account Name", "Notes"])
        previous: tuple[str, str] = ("", "")
        batch: list[tuple[str, ...]] = []
        for i in range(rows):
            fid = str(1_000_000 + i)
            # 7919 is prime, so i * 7919 mod 10**8 never repeats below 10**8 / gcd: unique ids,
            # one in ten with a leading zero.
            gid = f"{(i * 7919) % 100_000_000:08d}"
            name = f"{_NAMES[i % len(_NAMES)]} #{i % 9973}"
            note = _NOTES[i % len(_NOTES)]
            kind = i % 1000
            if kind == 17:  # invalid fusebillId
                fid = _BAD_IDS[(i // 1000) % len(_BAD_IDS)]
                expected["invalid"] += 1
            elif kind == 500 and i:  # the previous row again
                fid, gid = previous
                expected["duplicate"] += 1
            else:
                if kind == 250:
                    fid += ".0"  # Excel artefact, valid
                elif kind == 333:
                    gid = f"  {gid} "  # padded, trimmed, valid
                expected["valid"] += 1
            previous = (fid, gid)
            batch.append((fid, gid, name, note))
            if kind == 999:
                batch.append(("", "", "", ""))  # an all-blank line, skipped
                expected["blank_lines"] += 1
            if len(batch) >= 50_000:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)
    return expected


def ledger_counts(out: Path) -> tuple[int, int, int]:
    """(log lines, remembered input rows, commands) in ``out``'s job.db."""
    with contextlib.closing(sqlite3.connect(out / "job.db")) as con:
        lines = con.execute("SELECT count(*) FROM log").fetchone()[0]
        inputs = con.execute("SELECT count(*) FROM inputs").fetchone()[0]
        commands = con.execute("SELECT count(*) FROM commands").fetchone()[0]
    return int(lines), int(inputs), int(commands)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one run")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    source = OUT / f"input-{args.rows}.csv"
    report_dir = OUT / "report"
    began = time.perf_counter()
    expected = generate(source, args.rows)
    size_mb = source.stat().st_size / 1e6
    print(
        f"generated {source.relative_to(ROOT)}: {args.rows:,} rows, {size_mb:.1f} MB "
        f"in {time.perf_counter() - began:.1f} s; expected {expected}"
    )

    cmd = [sys.executable, "-m", "batch_latch", "run", str(source), "--dry-run"]
    cmd += ["--out", str(report_dir)]
    print("command: " + " ".join(cmd))
    print("peak RSS: ru_maxrss of the one child, from os.wait4 (per-child rusage)")
    shutil.rmtree(report_dir, ignore_errors=True)  # a new job: its commands are these runs
    walls: list[float] = []
    rss: list[float] = []
    ok = True
    for n in range(1, args.runs + 1):
        child = run_child(cmd, cwd=ROOT, err_path=OUT / "child-stderr.txt", timeout=TIMEOUT_S)
        code, wall, peak, cpu = child.code, child.wall, child.rss_mb, child.cpu
        walls.append(wall)
        rss.append(peak)
        summary = json.loads((report_dir / "summary.json").read_text())
        counts = summary["counts"]
        lines, inputs, commands = ledger_counts(report_dir)
        right = (
            lines == 0  # a dry run writes no per-row events, nor the input's rows
            and inputs == 0
            and commands == n
            and summary["rows"] == args.rows
            and counts.get("valid") == expected["valid"]
            and counts.get("invalid") == expected["invalid"]
            and counts.get("duplicate") == expected["duplicate"]
            and code == (1 if expected["invalid"] else 0)
        )
        ok = ok and right
        print(
            f"run {n}: exit {code}, wall {wall:.2f} s (CPU {cpu:.2f} s), "
            f"peak RSS {peak:.0f} MB, rows "
            f"{summary['rows']:,}, counts valid={counts.get('valid')} "
            f"invalid={counts.get('invalid')} duplicate={counts.get('duplicate')}; job.db: "
            f"{commands} commands, {lines} log lines, {inputs} input rows"
            + ("" if right else "  <-- UNEXPECTED")
        )

    best, median = min(walls), statistics.median(walls)
    worst_rss, median_rss = max(rss), statistics.median(rss)
    print(f"wall time: best {best:.2f} s, median {median:.2f} s (target <= {TARGET_WALL_S:g} s)")
    print(
        f"peak RSS: max {worst_rss:.0f} MB, median {median_rss:.0f} MB "
        f"(target <= {TARGET_RSS_MB:g} MB)"
    )
    print(f"throughput: {args.rows / best:,.0f} rows/s (best run)")
    if args.profile:
        profile(cmd, cwd=ROOT, stats=OUT / "dry_run.prof", timeout=TIMEOUT_S)
    passed = ok and median <= TARGET_WALL_S and worst_rss <= TARGET_RSS_MB
    reasons = []
    if median > TARGET_WALL_S:
        reasons.append(f"median wall {median:.2f} s > {TARGET_WALL_S:g} s")
    if worst_rss > TARGET_RSS_MB:
        reasons.append(f"RSS {worst_rss:.0f} MB > {TARGET_RSS_MB:g} MB")
    if not ok:
        reasons.append("unexpected exit code or counts")
    print(
        ("PASS" if passed else "FAIL")
        + f": dry run of {args.rows:,} rows"
        + ("" if passed else " (" + "; ".join(reasons) + ")")
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
