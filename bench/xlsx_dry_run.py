"""Benchmark: ``batch-latch run FILE.xlsx --dry-run`` on a 1,000,000-row workbook, end to end.

Generates (once, cached in ``bench/out/xlsx_dry_run/``) a workbook with XlsxWriter's
``constant_memory`` mode: a header and N rows of four columns, the two ids as number cells
(as ops' exports hold them) and two text columns. Then runs
``python -m batch_latch run FILE --dry-run --out DIR`` as a subprocess K times and reports
wall time and the child's own peak RSS (``os.wait4``, see ``_common.run_child``).

Targets (issue 9): 1,000,000 rows <= 8 s and <= 1 GB; 100,000 rows <= 1.5 s. Issue 20:
``--formatted`` gives every cell a conditional or fractional format (fusebillId ``# ?/?``,
geotabId ``[<100000]00000;0``, the text columns ``[<0]0;0``): 100,000 rows <= 3 s.

    python bench/xlsx_dry_run.py [--rows N] [--runs K] [--in-process] [--formatted]

``--in-process`` times ``loader.load`` + ``validate.validate`` in this process instead (for
when the CLI is being changed); it says so in its output.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from _common import machine, run_child

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "xlsx_dry_run"
TIMEOUT_S = 300.0


def target(rows: int, formatted: bool = False) -> tuple[float, float]:
    """(wall s, RSS MB) targets, scaled between the issue's two points."""
    if formatted:
        return (3.0, 1000.0) if rows <= 100_000 else (30.0, 1000.0)
    return (1.5, 1000.0) if rows <= 100_000 else (8.0, 1000.0)


def generate(path: Path, rows: int, formatted: bool = False) -> None:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.xlsx")
    workbook = xlsxwriter.Workbook(str(partial), {"constant_memory": True})
    codes = ["# ?/?", "[<100000]00000;0", "[<0]0;0", "[<0]0;0"] if formatted else []
    formats = [workbook.add_format({"num_format": c}) for c in codes] or [None] * 4
    sheet = workbook.add_worksheet("Data")
    sheet.write_row(0, 0, ["Fusebill ID", "Geotab Reseller Customer ID", "Account Name", "Notes"])
    for i in range(rows):
        sheet.write_number(i + 1, 0, 1_000_000 + i, formats[0])
        sheet.write_number(i + 1, 1, (i * 7919) % 100_000_000, formats[1])  # 7919 is prime
        sheet.write_string(i + 1, 2, f"ACME Haulage #{i % 9973}", formats[2])
        sheet.write_string(i + 1, 3, "renewal" if i % 3 else "", formats[3])
    workbook.close()
    partial.replace(path)


def in_process(source: Path) -> None:
    from batch_latch.sheet import loader, validate

    began = time.perf_counter()
    sheet = loader.load(source)
    loaded = time.perf_counter()
    verdicts = validate.validate(sheet)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"in-process (CLI not used): load {loaded - began:.2f} s, validate {done - loaded:.2f} s, "
        f"total {done - began:.2f} s, peak RSS {peak:.0f} MB, counts {verdicts.counts()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--formatted", action="store_true", help="conditional/fraction formats")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    source = OUT / f"input-{args.rows}{'-formatted' if args.formatted else ''}.xlsx"
    if not source.exists():
        began = time.perf_counter()
        generate(source, args.rows, args.formatted)
        print(f"generated {source.relative_to(ROOT)} in {time.perf_counter() - began:.1f} s")
    print(f"input: {source.relative_to(ROOT)}, {source.stat().st_size / 1e6:.1f} MB")
    if args.in_process:
        in_process(source)
        return 0
    cmd = [sys.executable, "-m", "batch_latch", "run", str(source), "--dry-run"]
    cmd += ["--out", str(OUT / "report")]
    print("command: " + " ".join(cmd))
    walls, rss = [], []
    for n in range(1, args.runs + 1):
        child = run_child(cmd, cwd=ROOT, err_path=OUT / "child-stderr.txt", timeout=TIMEOUT_S)
        walls.append(child.wall)
        rss.append(child.rss_mb)
        print(
            f"run {n}: exit {child.code}, wall {child.wall:.2f} s (CPU {child.cpu:.2f} s), "
            f"peak RSS {child.rss_mb:.0f} MB"
        )
    if not walls:
        return 0  # --runs 0: generate only
    wall_target, rss_target = target(args.rows, args.formatted)
    median, worst = statistics.median(walls), max(rss)
    passed = median <= wall_target and worst <= rss_target
    print(
        f"{'PASS' if passed else 'FAIL'}: {args.rows:,} rows, median wall {median:.2f} s "
        f"(target <= {wall_target:g} s), peak RSS {worst:.0f} MB (target <= {rss_target:g} MB)"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
