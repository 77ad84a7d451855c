"""Benchmark: ``write_results_xlsx`` on a 100,000-row report table (11 tool columns + 2).

Builds the table the runner hands over: ``row``/``http_status``/``attempts`` as int64 (some
``http_status`` null), ids with leading zeros, dictionary-coded ``status``, ``message``,
``error_key`` and ``change`` columns, timestamps, and two input columns (account name, notes).
Each run is a child process (``python bench/results_xlsx.py --child ...``) that builds the
table, then times ``write_results_xlsx`` alone with ``time.perf_counter`` and writes the
figure to a JSON file; the parent reads the child's own peak RSS from ``os.wait4``, and the
child reports its peak RSS before the write, so the writer's share shows. The child also
reports the write's CPU seconds (``time.process_time``). On the shared VM both figures move
by up to half from one run to the next; a change smaller than that is judged by the
instructions it executes (``valgrind --tool=cachegrind`` on a few thousand rows, see
docs/benchmarks.md).

Target: the write takes at most 3 s per 100,000 rows (median of the runs); peak RSS at most
700 MB. The best time is reported too. ``--naive`` times the plain per-cell ``write_string``
loop instead, for comparison (not judged).

    python bench/results_xlsx.py [--rows N] [--runs K] [--naive] [--profile]

Scratch files go to ``bench/out/results_xlsx/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from _common import machine, profile, run_child

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "results_xlsx"
TARGET_WALL_S = 3.0
TARGET_RSS_MB = 700.0
TIMEOUT_S = 300.0

_STATUSES = ("success",) * 14 + ("not_found", "failed", "invalid", "duplicate", "pending")
_MESSAGES = {
    "success": "latched",
    "not_found": "HTTP 404: customer {fid} not found",
    "failed": "HTTP 400: geotabId already used by customer 1000{n}",
    "invalid": "geotabId is empty",
    "duplicate": "same fusebillId and geotabId as row {prev}",
    "pending": "not sent: --max-requests was reached",
}
_NAMES = ("ACME Haulage", "Northwind Fleet", "Blue Line Couriers", "Harbour Taxis")
_NOTES = ("", "", "renewal, Q3", "moved from legacy billing", 'said "asap"', "")


def build_table(rows: int):  # type: ignore[no-untyped-def]
    """The report table as the runner builds it: text columns dictionary-coded."""
    import pyarrow as pa

    status, message, http, attempts, change, previous = [], [], [], [], [], []
    for i in range(rows):
        s = _STATUSES[i % len(_STATUSES)]
        status.append(s)
        message.append(_MESSAGES[s].format(fid=1_000_000 + i, n=i % 97, prev=i + 1))
        http.append({"success": 200, "not_found": 404, "failed": 400}.get(s))
        attempts.append(0 if s in ("invalid", "duplicate", "pending") else 1 + (i % 50 == 0))
        change.append(("new", "unchanged", "relatch")[i % 3] if s == "success" else "")
        previous.append(f"{(i * 31) % 10**7:07d}" if change[-1] == "relatch" else "")

    def coded(values: list[str]) -> pa.Array:
        return pa.array(values).dictionary_encode()

    return pa.table(
        {
            "row": pa.array(range(2, rows + 2), pa.int64()),
            "fusebillId": pa.array([str(1_000_000 + i) for i in range(rows)]),
            "geotabId": pa.array([f"{(i * 7919) % 10**8:08d}" for i in range(rows)]),
            "status": coded(status),
            "http_status": pa.array(http, pa.int64()),
            "attempts": pa.array(attempts, pa.int64()),
            "message": coded(message),
            "error_key": coded(["GeotabIdInUse" if s == "failed" else "" for s in status]),
            "change": coded(change),
            "previous_geotabId": pa.array(previous),
            "finished_at": pa.array(
                [f"2026-11-27T10:{i // 6000 % 60:02d}:00Z" for i in range(rows)]
            ),
            "Account Name": pa.array([f"{_NAMES[i % 4]} #{i % 9973}" for i in range(rows)]),
            "Notes": pa.array([_NOTES[i % len(_NOTES)] for i in range(rows)]),
        }
    )


def naive_write(path: Path, table) -> None:  # type: ignore[no-untyped-def]
    """The plain way, for comparison: one ``write_string`` per cell."""
    import xlsxwriter

    options = {"constant_memory": True, "strings_to_numbers": False}
    workbook = xlsxwriter.Workbook(str(path), options | {"strings_to_formulas": False})
    sheet = workbook.add_worksheet("Results")
    sheet.write_row(0, 0, table.column_names)
    columns = [[None if v is None else str(v) for v in c.to_pylist()] for c in table.columns]
    for r, values in enumerate(zip(*columns), start=1):
        for c, value in enumerate(values):
            if value:
                sheet.write_string(r, c, value)
    workbook.close()


def child(rows: int, result: Path, naive: bool) -> None:
    sys.path.insert(0, str(ROOT))
    from batch_latch.reports.xlsx import write_results_xlsx
    from batch_latch.vocab import Change, Status

    table = build_table(rows)
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    target = OUT / "results.xlsx"
    counts = {Status.SUCCESS: rows}
    start, cpu = time.perf_counter(), time.process_time()
    if naive:
        naive_write(target, table)
    else:
        write_results_xlsx(target, table, counts, {Change.NEW: rows}, title="Run of bench.xlsx")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    size_mb = target.stat().st_size / 1e6
    figures = {"write_s": seconds, "cpu_s": cpu, "rss_before_mb": before_mb, "mb": size_mb}
    result.write_text(json.dumps(figures))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive", action="store_true", help="time per-cell write_string")
    parser.add_argument("--profile", action="store_true", help="also profile one run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rows, args.child, args.naive)
        return 0

    print(f"machine: {machine()}")
    OUT.mkdir(parents=True, exist_ok=True)
    result = OUT / "child.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--rows", str(args.rows)]
    cmd += ["--child", str(result)] + (["--naive"] if args.naive else [])
    print("command: " + " ".join(cmd))
    print("write time: perf_counter around write_results_xlsx in the child (table built first)")
    print("peak RSS: ru_maxrss of the one child, from os.wait4; 'before' = after the build")
    writes: list[float] = []
    cpus: list[float] = []
    rss: list[float] = []
    for n in range(1, args.runs + 1):
        run = run_child(cmd, cwd=ROOT, err_path=OUT / "child-stderr.txt", timeout=TIMEOUT_S)
        if run.code != 0:
            print(f"run {n}: child exited {run.code}")
            return 1
        figures = json.loads(result.read_text())
        writes.append(figures["write_s"])
        cpus.append(figures["cpu_s"])
        rss.append(run.rss_mb)
        print(
            f"run {n}: write {figures['write_s']:.2f} s (CPU {figures['cpu_s']:.2f} s), "
            f"file {figures['mb']:.1f} MB, peak RSS "
            f"{run.rss_mb:.0f} MB (before the write {figures['rss_before_mb']:.0f} MB), "
            f"child wall {run.wall:.2f} s"
        )
    best, median, worst_rss = min(writes), statistics.median(writes), max(rss)
    target_s = TARGET_WALL_S * args.rows / 100_000
    what = "per-cell write_string (naive)" if args.naive else "write_results_xlsx"
    print(f"{what}: best {best:.2f} s, median {median:.2f} s (target <= {target_s:g} s)")
    print(f"CPU of the write: best {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s")
    print(f"peak RSS: max {worst_rss:.0f} MB (target <= {TARGET_RSS_MB:g} MB)")
    print(f"throughput: {args.rows / best:,.0f} rows/s (best run)")
    if args.profile:
        profile(cmd, cwd=ROOT, stats=OUT / "results_xlsx.prof", timeout=TIMEOUT_S)
    if args.naive:
        print(f"naive comparison of {args.rows:,} rows: not judged")
        return 0
    passed = median <= target_s and worst_rss <= TARGET_RSS_MB
    print(("PASS" if passed else "FAIL") + f": results.xlsx of {args.rows:,} rows")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
