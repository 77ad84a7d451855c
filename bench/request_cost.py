"""Benchmark (v3, issue #16): requests are the scarce resource. Counts what the safe routine
spends against the sandbox, through the real CLI as a subprocess.

1. Requests per row on 10,000 rows: a plan, a run of new rows, a run of rows already right
   (targets: 0.011, 1.011, 0.011; v2: 1.0, 2.0, 1.0).
2. The same 300 new rows at ``--rate 40`` against 50 ms latency, ``--read-batch 100`` and
   ``--read-batch 1`` in turn: wall time of the run (target: the batched run <= 0.55 of the
   one-by-one run) and 429s (target 0).
3. The estimate a run prints for 1,000,000 new rows at live limits with the default reserve
   (target <= 6.3 days; v2 with no reserve: 11.1), read from its own stderr line.
4. An undo of a 5,000-customer job: its reads (target: ceil(5,000 / 100) = 50, so 10,000 for
   a 1,000,000-customer job).
5. ``run --plan``: loading a 1,000,000-row plan (target: adds <= 1 s to a run).
6. v4 (issue #25) the paging headers read either way: a plan and a run of 250 rows, 5 of
   them customers that do not exist, against the sandbox under each ``--list-headers``
   (``index``, ``docs``, ``none``). Targets: a plan at most ceil(N / 100) + not found
   requests, a run of new rows at most N + ceil(N / 100) + not found, the same under
   ``index`` and ``docs``; without paging headers at most one request more per batch.

    python bench/request_cost.py              # everything
    python bench/request_cost.py --readings   # only 6

Everything stays on 127.0.0.1; scratch files go to ``bench/out/request_cost/`` (git-ignored).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import machine

from batch_latch.jobfolder import plans
from batch_latch.sandbox import ListHeaders, Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "request_cost"
KEY = "bench-key"


def sheet(path: Path, rows: int, start: int = 1_000_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fusebillId", "geotabId"])
        writer.writerows((start + i, f"G{i:07d}") for i in range(rows))
    return path


def cli(*words: object, base: str, timeout: float = 600) -> tuple[int, str, float]:
    """Run the CLI; (exit code, stderr, seconds of its sending phase: from its "Sending" or
    "Planning" line on stderr to its exit, so start-up and loading do not blur a ratio)."""
    env = {**os.environ, "FUSEBILL_API_KEY": KEY, "FUSEBILL_BASE_URL": base}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch_latch", *map(str, words), "--no-progress"],
        env=env,
        cwd=OUT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines, began = [], started
    for line in proc.stderr:
        if line.startswith(("Sending ", "Planning ", "Undoing ")) and began == started:
            began = time.perf_counter()
        lines.append(line)
    code = proc.wait(timeout)
    return code, "".join(lines), time.perf_counter() - began


def summary(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


def per_row(rows: int) -> bool:
    ok = True
    # No minute limit here (a token bucket far above --rate): this counts requests, and a
    # live account's 1,000 a minute would only add pauses and 429 retries to the count.
    config = SandboxConfig(port=0, api_key=KEY, profile="live", rate_limit=100_000.0)
    with Sandbox(config) as sandbox:
        source = sheet(OUT / "ten-thousand.csv", rows)
        fast = ("--rate", "2000", "--workers", "16")
        for label, words, target in [
            ("plan", ("plan", source, "--out", OUT / "a", *fast), 0.011),
            ("run, new rows", ("run", source, "--out", OUT / "a", *fast), 1.011),
            ("run, rows already right", ("run", source, "--out", OUT / "b", *fast), 0.011),
        ]:
            code, _, took = cli(*words, base=sandbox.base_url)
            s = summary(Path(words[3]))
            requests = int(str(s["requests"]))
            share = requests / rows
            ok &= share <= target and code in (0, 1)
            print(
                f"  {label:<24} {requests:>6,} requests for {rows:,} rows: {share:.4f} a row "
                f"(target <= {target}), reads {s['reads']}, writes {s['writes']}, "
                f"{took:.1f} s, exit {code}"
            )
    return ok


def wall_ratio() -> bool:
    walls = {}
    for batch in (100, 1):
        config = SandboxConfig(port=0, api_key=KEY, profile="live", latency_ms=50)
        with Sandbox(config) as sandbox:
            source = sheet(OUT / "three-hundred.csv", 300, start=2_000_000)
            out = OUT / f"batch-{batch}"
            words = ("run", source, "--out", out, "--rate", "40", "--read-batch", batch)
            code, _, took = cli(*words, base=sandbox.base_url)
            limited = sum(r.status == 429 for r in sandbox.requests_log())
            walls[batch] = took
            print(
                f"  --read-batch {batch:<3} {summary(out)['requests']} requests, sending phase "
                f"{took:.2f} s, "
                f"{limited} x 429, exit {code}"
            )
    ratio = walls[100] / walls[1]
    print(f"  wall time ratio {ratio:.2f} (target <= 0.55)")
    return ratio <= 0.55


def million_estimate() -> bool:
    source = sheet(OUT / "million.csv", 1_000_000)
    with Sandbox(SandboxConfig(port=0, api_key=KEY, profile="live")) as sandbox:
        _, err, _ = cli(
            "run", source, "--out", OUT / "m", "--max-requests", "1", base=sandbox.base_url
        )
    line = next((x for x in err.splitlines() if x.startswith("This account's limits")), "")
    found = re.search(r"about ([\d.]+) days", line)
    print(f"  {line}")
    return found is not None and float(found.group(1)) <= 6.3


def undo_reads(customers: int) -> bool:
    config = SandboxConfig(port=0, api_key=KEY, profile="live", rate_limit=100_000.0)
    with Sandbox(config) as sandbox:
        source = sheet(OUT / "undo.csv", customers, start=3_000_000)
        fast = ("--rate", "2000", "--workers", "16")
        cli("run", source, "--out", OUT / "u", *fast, base=sandbox.base_url)
        code, _, took = cli("undo", OUT / "u", *fast, base=sandbox.base_url)
    s = summary(OUT / "u")
    reads = int(str(s["reads"]))
    print(
        f"  undo of {customers:,} customers: {reads} read requests, {s['writes']} writes, "
        f"{took:.1f} s, exit {code} (a 1,000,000-customer job: {reads * 1_000_000 // customers:,})"
    )
    return reads <= -(-customers // 100)


def plan_load(rows: int) -> bool:
    folder = OUT / "plan"
    folder.mkdir(parents=True, exist_ok=True)
    fids = pa.array(np.arange(1_000_000, 1_000_000 + rows).astype(str))
    text = pa.array([f"G{i}" for i in range(rows)])
    plans.write_plan(
        folder,
        fids,
        text,
        pa.array(["valid"] * rows),
        pa.array(["new"] * rows),
        pa.array([""] * rows),
    )
    times, found = [], 0
    for _ in range(3):
        started = time.perf_counter()
        plan = plans.load(folder)
        entries = plan.entries(np.arange(1_000_000, 1_000_000 + rows, dtype=np.int64))
        times.append(time.perf_counter() - started)
        found = sum(e is not None for e in entries)
        del plan, entries
    took = sorted(times)[1]
    print(
        f"  loading a {rows:,}-row plan and finding every row's entry: median {took:.2f} s "
        f"of 3 ({min(times):.2f}-{max(times):.2f}; target <= 1 s), {found:,} entries"
    )
    return took <= 1.0 and found == rows


def readings(rows: int = 250, missing: int = 5) -> bool:
    """Section 6: plan then run of ``rows`` rows, the first ``missing`` of them unknown ids
    (the sandbox's customers start at 1,000,000), under each reading of the paging headers."""
    batches = -(-rows // 100)
    plan_bound, run_bound = batches + missing, rows + batches + missing
    costs: dict[str, tuple[int, int]] = {}
    ok = True
    for style in ("index", "docs", "none"):
        config = SandboxConfig(
            port=0,
            api_key=KEY,
            profile="live",
            rate_limit=100_000.0,
            list_headers=ListHeaders(style),
        )
        with Sandbox(config) as sandbox:
            source = sheet(OUT / "readings.csv", rows, start=1_000_000 - missing)
            out = OUT / f"readings-{style}"
            fast = ("--rate", "2000", "--workers", "16")
            counted = []
            for label, command, bound in (("plan", "plan", plan_bound), ("run", "run", run_bound)):
                before = len(sandbox.requests_log())
                code, _, _ = cli(command, source, "--out", out, *fast, base=sandbox.base_url)
                log = sandbox.requests_log()[before:]
                lists = sum(r.path.rstrip("/").lower() == "/v1/customers" for r in log)
                singles = sum(r.path.lower().startswith("/v1/customers/") for r in log)
                writes = sum(r.method == "POST" for r in log)
                counted.append(len(log))
                # without paging headers, finding the end may cost one request more a batch
                allowed = bound + (batches if style == "none" else 0)
                ok &= len(log) <= allowed and code in (0, 1)
                print(
                    f"  --list-headers {style:<5} {label:<4} {len(log):>4} requests "
                    f"({lists} list, {singles} single reads, {writes} writes; "
                    f"bound {bound}), exit {code}"
                )
            costs[style] = (counted[0], counted[1])
    ok &= costs["index"] == costs["docs"]
    print(
        f"  {rows} rows, {missing} not found: plan bound ceil({rows}/100) + {missing} = "
        f"{plan_bound}, run bound {rows} + {batches} + {missing} = {run_bound}"
    )
    return ok


def main() -> int:
    if sys.argv[1:] == ["--readings"]:
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir(parents=True)
        print(machine())
        print("6. the paging headers read either way (issue #25):")
        ok = readings()
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    print(machine())
    results = []
    print("1. requests per row, 10,000 rows:")
    results.append(per_row(10_000))
    print("2. 300 new rows at --rate 40 against 50 ms latency:")
    results.append(wall_ratio())
    print("3. the estimate for 1,000,000 new rows at live limits, default reserve:")
    results.append(million_estimate())
    print("4. undo reads:")
    results.append(undo_reads(5_000))
    print("5. run --plan:")
    results.append(plan_load(1_000_000))
    print("6. the paging headers read either way (issue #25):")
    results.append(readings())
    print("PASS" if all(results) else f"FAIL {results}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
