"""Benchmark: sending rate against the sandbox, and pausing on Fusebill's minute limit.

Part 1 (about 2 minutes): a sandbox in this process with 200 ms latency and a 20 requests/s
token bucket; ``python -m batch_latch run FILE --rate 20 --workers 8 --no-progress`` on 300
new customers (ids 1,000,000 and up) as a subprocess, three times: reading the customers first
through the customer list, up to 100 a request (the default, ``--read-batch 100``), reading
each customer on its own (``--read-batch 1``, v2's one read a row, so the old figure stays
comparable) and with ``--no-read``. Reported: rows / wall time of the sending phase (from the
tool's "Sending ..." line on stderr to its summary on stdout, both timestamped as they
arrive), requests / (last - first) arrival in the sandbox's request log, and 429s. Targets:
read-first sends at most ceil(300 / 100) + 300 = 303 requests, ``--read-batch 1`` at most
600, both at >= 95 % of 20 requests/s (requests, reads and writes alike, per second);
--no-read keeps >= 95 % of 20 rows/s; zero 429s. Side by side, the sequential loop the
vendor's documentation suggests (one ``requests.post`` per row) on the same rows: its rate.

Part 2 (2 to 3 minutes, skipped by ``--quick``): a sandbox with ``profile="sandbox"`` (50
requests a minute, real 60-second windows aligned to the clock) and 120 rows at the tool's
default ``--rate`` (10): at most ceil(120 / 100) + 120 = 122 requests, plus one list read
a pause (a batch read before a pause is read again when it grew older than 45 s). Target:
zero 429s, because the tool pauses when an answer says ``X-Rate-Limit-Remaining-Minute: 0``.

    python bench/throughput.py [--quick]

Everything stays on 127.0.0.1; scratch files go to ``bench/out/throughput/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests
from _common import machine

from batch_latch.sandbox import LoggedRequest, Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "throughput"
RATE = 20.0
LATENCY_MS = 200
ROWS = 300
ROWS_PART2 = 120
TARGET_SHARE = 0.95
READ_BATCH = 100  # the tool's default --read-batch
LATCH_PATH = "/v1/Geotab/LatchCustomer"


def write_rows(path: Path, rows: int) -> list[tuple[int, str]]:
    pairs = [(1_000_000 + i, f"{(i * 7919) % 10_000_000:07d}") for i in range(rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fusebillId", "geotabId", "Account Name"])
        writer.writerows((fid, gid, f"Fleet {fid}") for fid, gid in pairs)
    return pairs


@dataclass
class ChildRun:
    code: int
    started: float
    ended: float
    lines: list[tuple[float, str, str]] = field(default_factory=list)  # (time, stream, text)

    def first(self, stream: str, prefix: str) -> float | None:
        for at, where, text in self.lines:
            if where == stream and text.startswith(prefix):
                return at
        return None


def run_tool(
    source: Path,
    out_dir: Path,
    sandbox: Sandbox,
    extra: list[str],
    timeout: float,
    watch: float | None = None,
) -> ChildRun:
    """Run the tool against the sandbox; lines are timestamped as they arrive."""
    shutil.rmtree(out_dir, ignore_errors=True)
    env = dict(os.environ)
    env["FUSEBILL_API_KEY"] = sandbox.config.api_key
    env["FUSEBILL_BASE_URL"] = sandbox.base_url
    cmd = [sys.executable, "-m", "batch_latch", "run", str(source), "--out", str(out_dir)]
    cmd += [*extra, "--no-progress"]
    print("  command: python " + " ".join(cmd[1:]).replace(str(ROOT) + "/", ""))
    lines: list[tuple[float, str, str]] = []
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def read(stream: str) -> None:
        pipe = proc.stdout if stream == "stdout" else proc.stderr
        assert pipe is not None
        for text in pipe:
            lines.append((time.perf_counter(), stream, text.rstrip("\n")))
            if watch is not None and stream == "stderr":
                print(f"  [{time.perf_counter() - started:6.1f} s] tool: {text.rstrip()}")

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    deadline = started + timeout
    last_note = started
    while proc.poll() is None:
        now = time.perf_counter()
        if now > deadline:
            proc.kill()
            print(f"  killed the tool after {timeout:g} s")
            break
        if watch is not None and now - last_note >= watch:
            last_note = now
            log = latches(sandbox)
            n429 = sum(1 for e in log if e.status == 429)
            print(f"  [{now - started:6.1f} s] sandbox has seen {len(log)} latches, {n429} 429s")
        time.sleep(0.05)
    code = proc.wait()
    ended = time.perf_counter()
    for reader in readers:
        reader.join(timeout=5)
    return ChildRun(code, started, ended, sorted(lines))


def latches(sandbox: Sandbox) -> list[LoggedRequest]:
    """Latch requests, by arrival time (the log is in order of answer)."""
    entries = [
        e
        for e in sandbox.requests_log()
        if e.method == "POST" and e.path.lower() == LATCH_PATH.lower()
    ]
    return sorted(entries, key=lambda e: e.at)


def log_rate(log: list[LoggedRequest]) -> tuple[float, float]:
    """requests / (last - first arrival), and that span."""
    if len(log) < 2:
        return 0.0, 0.0
    span = log[-1].at - log[0].at
    return (len(log) / span if span > 0 else float("inf")), span


def vendor_loop(sandbox: Sandbox, pairs: list[tuple[int, str]]) -> tuple[float, Counter[int]]:
    """The documentation's loop: one requests.post per row, nothing else."""
    url = sandbox.base_url + "/Geotab/LatchCustomer"
    headers = {"Authorization": "Basic " + sandbox.config.api_key}
    statuses: Counter[int] = Counter()
    began = time.perf_counter()
    for fid, gid in pairs:
        reply = requests.post(url, json={"fusebillId": fid, "geotabId": gid}, headers=headers)
        statuses[reply.status_code] += 1
    return time.perf_counter() - began, statuses


def most_requests(rows: int, extra: list[str]) -> int:
    """The requests a run of new rows may send: a write each, plus its reads (none with
    --no-read, one a row with --read-batch 1, else one list read per READ_BATCH rows)."""
    if "--no-read" in extra:
        return rows
    batch = int(extra[extra.index("--read-batch") + 1]) if "--read-batch" in extra else READ_BATCH
    return -(-rows // batch) + rows


def measure_tool(source: Path, config: SandboxConfig, label: str, extra: list[str]) -> bool:
    """One CLI run against a fresh sandbox; rows/s over the sending phase and req/s in the
    sandbox's log (every request, reads included)."""
    sandbox = Sandbox(config).start()
    out_dir = OUT / f"part1-{label}"
    try:
        print(f"batch-latch ({label}) against {sandbox.base_url}")
        flags = ["--rate", f"{RATE:g}", "--workers", "8", *extra]
        child = run_tool(source, out_dir, sandbox, flags, timeout=120)
        log = sorted(sandbox.requests_log(), key=lambda e: e.at)
    finally:
        sandbox.stop()
    summary = json.loads((out_dir / "summary.json").read_text())
    send_start = child.first("stderr", "Sending ")
    send_end = child.first("stdout", "Run of ")
    send_wall = (send_end - send_start) if send_start and send_end else float("nan")
    rows_rate = ROWS / send_wall
    req_rate, span = log_rate(log)
    statuses = Counter(e.status for e in log)
    n429 = statuses.get(429, 0)
    reads = summary.get("reads", 0)
    print(
        f"  exit {child.code}; summary: requests {summary['requests']} ({reads} reads, "
        f"{summary.get('writes')} writes), success {summary['counts'].get('success')}; "
        f"sandbox log: {len(log)} requests, statuses {dict(statuses)}"
    )
    print(
        f"  process wall time: {child.ended - child.started:.2f} s (start-up and reports included)"
    )
    print(f"  sending phase: {send_wall:.2f} s -> {rows_rate:.2f} rows/s")
    print(f"  sandbox log: {len(log)} requests over {span:.2f} s -> {req_rate:.2f} req/s")
    floor = TARGET_SHARE * RATE
    most = most_requests(ROWS, extra)
    rate_ok = rows_rate >= floor if "--no-read" in extra else req_rate >= floor
    ok = (
        child.code == 0
        and summary["requests"] <= most
        and summary["counts"].get("success") == ROWS
        and set(statuses) == {200}
        and rate_ok
        and n429 == 0
    )
    measured = f"{rows_rate:.2f} rows/s" if "--no-read" in extra else f"{req_rate:.2f} req/s"
    print(
        f"{'PASS' if ok else 'FAIL'}: part 1 {label}, {measured} vs target >= {floor:g}; "
        f"{summary['requests']} requests (at most {most}); {n429} 429s (target 0)"
    )
    return ok


def part_one() -> bool:
    print(f"\n== Part 1: {ROWS} rows, sandbox latency {LATENCY_MS} ms, limit {RATE:g} req/s ==")
    source = OUT / f"rows-{ROWS}.csv"
    pairs = write_rows(source, ROWS)
    config = SandboxConfig(latency_ms=LATENCY_MS, rate_limit=RATE)
    read_first = measure_tool(source, config, "read-first", [])
    one_by_one = measure_tool(source, config, "read-batch-1", ["--read-batch", "1"])
    blind = measure_tool(source, config, "no-read", ["--no-read"])

    sandbox = Sandbox(config).start()
    try:
        print(f"vendor loop (sequential requests.post) against {sandbox.base_url}")
        loop_wall, loop_statuses = vendor_loop(sandbox, pairs)
        loop_log = latches(sandbox)
    finally:
        sandbox.stop()
    loop_rate = ROWS / loop_wall
    loop_log_rate, loop_span = log_rate(loop_log)
    print(f"  statuses {dict(loop_statuses)}; wall {loop_wall:.2f} s -> {loop_rate:.2f} rows/s")
    print(f"  sandbox log: {len(loop_log)} requests over {loop_span:.2f} s -> {loop_log_rate:.2f}")
    return read_first and one_by_one and blind


def part_two() -> bool:
    print(f"\n== Part 2: {ROWS_PART2} rows, profile 'sandbox' (50/min), default --rate ==")
    source = OUT / f"rows-{ROWS_PART2}.csv"
    write_rows(source, ROWS_PART2)
    sandbox = Sandbox(SandboxConfig(profile="sandbox")).start()
    try:
        clock = datetime.now(timezone.utc).strftime("%H:%M:%S")
        print(f"batch-latch against {sandbox.base_url}, starting at {clock} UTC")
        child = run_tool(source, OUT / "part2-report", sandbox, [], timeout=300, watch=10)
        log = latches(sandbox)
    finally:
        sandbox.stop()
    summary = json.loads((OUT / "part2-report" / "summary.json").read_text())
    statuses = Counter(e.status for e in log)
    n429 = statuses.get(429, 0)
    windows = Counter(int(e.at // 60) for e in log)
    per_window = [windows[w] for w in sorted(windows)]
    gaps = [
        (b.at - a.at, datetime.fromtimestamp(b.at, timezone.utc).strftime("%H:%M:%S.%f")[:-3])
        for a, b in itertools.pairwise(log)
        if b.at - a.at > 2
    ]
    print(
        f"  exit {child.code}; wall {child.ended - child.started:.1f} s; summary: requests "
        f"{summary['requests']}, success {summary['counts'].get('success')}"
    )
    print(f"  sandbox log: {len(log)} latches, statuses {dict(statuses)}")
    print(f"  latches per clock minute: {per_window}")
    for gap, resumed in gaps:
        print(f"  paused {gap:.2f} s, resumed at {resumed} UTC")
    # A pause can age the batch read before it: one list read again after each.
    most = most_requests(ROWS_PART2, []) + len(gaps)
    ok = (
        child.code == 0
        and n429 == 0
        and summary["requests"] <= most
        and summary["counts"].get("success") == ROWS_PART2
        and all(n <= 50 for n in per_window)
    )
    print(
        f"{'PASS' if ok else 'FAIL'}: part 2, {n429} 429s (target 0), "
        f"{summary['counts'].get('success')}/{ROWS_PART2} latched, "
        f"{summary['requests']} requests (at most {most})"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip part 2 (2-3 minutes)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    ok = part_one()
    if args.quick:
        print("\npart 2 skipped (--quick)")
    else:
        ok = part_two() and ok
    print(("PASS" if ok else "FAIL") + ": throughput" + (" (part 1 only)" if args.quick else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
