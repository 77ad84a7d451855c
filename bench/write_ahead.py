"""Benchmark: what the write-ahead record in the job's ledger costs a run, and kill -9.

Before each latch is sent, the tool commits a ``writing`` line to ``OUT/job.db`` (SQLite,
WAL, ``synchronous=FULL``; workers that finish together share one commit), then the
outcome line after the answer. This runs the real CLI as a subprocess,
``python -m batch_latch run FILE --out DIR --rate 200 --workers 16 --no-progress``, on 20,000
new customers (ids 1,000,000 and up) against a fresh in-process sandbox each run (loopback, no
latency by default, a 100,000 requests/s token bucket so only ``--rate`` paces), and reports
per run: requests the sandbox saw (list reads + writes), requests/s over the sending phase
(first to last arrival in the sandbox's log; also requests over the tool's "Sending ..." line
on stderr to its summary on stdout), that rate's share of ``--rate``, the child's CPU seconds
(user + system from ``os.wait4``, start-up and reports included) per 1,000 requests, the
ledger's bytes per row and per line (a latched row has two lines), and 429s.

Then (``--kills 3``, 0 to skip) one more job of the same rows, killed with SIGKILL three
times mid-run (after 2-6 s of traffic each) and then run to the end: every pair latched,
how many writes were open (``open_writes``) after each kill, and how many pairs the sandbox
saw POSTed more than once (target: none beyond the writes in flight at the kills; with read
before write a latch that landed unanswered is found by the next run's read, so 0).

Targets (median of the runs): requests/s >= 0.97 of ``--rate`` (v3: 199.2, 0.996) with
the ledger's durable write intents; every run exits 0 with every row latched and no 429s;
after the kills, 0 pairs sent twice beyond the writes in flight.

    python bench/write_ahead.py [--rows 20000] [--runs 3] [--latency-ms 0] [--kills 3]

Everything stays on 127.0.0.1; scratch files go to ``bench/out/write_ahead/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from _common import machine

from batch_latch.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "write_ahead"
RATE = 200
WORKERS = 16
TARGET_SHARE = 0.97
KILL_AFTER_S = (2.0, 6.0)


@dataclass(frozen=True)
class Run:
    ok: bool
    requests: int
    log_rate: float  # requests / (last - first arrival in the sandbox's log)
    tool_rate: float  # requests / ("Sending ..." on stderr to "Run of" on stdout)
    cpu_per_1000: float
    bytes_per_row: float
    bytes_per_record: float
    n429: int


def write_rows(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fusebillId", "geotabId"])
        writer.writerows((1_000_000 + i, f"G{i:07d}") for i in range(rows))


def run_cli(
    cmd: list[str], env: dict[str, str], timeout: float
) -> tuple[int, tuple[float, float], dict[str, float]]:
    """(exit code, (user, system) CPU seconds, first arrival of each watched line)."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    marks: dict[str, float] = {}
    errors: list[str] = []

    def read(stream: str) -> None:
        pipe = proc.stdout if stream == "stdout" else proc.stderr
        assert pipe is not None
        for text in pipe:
            for prefix in ("Sending ", "Run of "):
                if text.startswith(prefix):
                    marks.setdefault(prefix, time.perf_counter())
            if stream == "stderr" and not text.startswith(("Sending ", "This account's")):
                errors.append(text.rstrip())

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=5)
    if [e for e in errors if e]:
        print("  child stderr: " + " | ".join(e for e in errors if e)[:500])
    return proc.returncode, (usage.ru_utime, usage.ru_stime), marks


def ledger_size(out_dir: Path) -> tuple[int, int]:
    """(bytes of job.db and its WAL, lines in its log)."""
    db = out_dir / "job.db"
    if not db.exists():
        return 0, 0
    size = sum(p.stat().st_size for p in out_dir.glob("job.db*") if p.is_file())
    with contextlib.closing(sqlite3.connect(db)) as con:
        lines = int(con.execute("SELECT count(*) FROM log").fetchone()[0])
    return size, lines


def one_run(source: Path, rows: int, latency_ms: int, number: int) -> Run:
    out_dir = OUT / f"run-{number}"
    shutil.rmtree(out_dir, ignore_errors=True)
    config = SandboxConfig(rate_limit=100_000.0, latency_ms=latency_ms)
    cmd = [sys.executable, "-m", "batch_latch", "run", str(source), "--out", str(out_dir)]
    cmd += ["--rate", str(RATE), "--workers", str(WORKERS), "--no-progress"]
    if number == 1:
        print("  command: python " + " ".join(cmd[1:]).replace(str(ROOT) + "/", ""))
    with Sandbox(config) as sandbox:
        env = {
            **os.environ,
            "FUSEBILL_API_KEY": sandbox.config.api_key,
            "FUSEBILL_BASE_URL": sandbox.base_url,
        }
        code, (user, system), marks = run_cli(cmd, env, timeout=60 + 3 * rows / RATE)
        log = sorted(sandbox.requests_log(), key=lambda e: e.at)
    cpu = user + system
    statuses = Counter(e.status for e in log)
    reads = sum(1 for e in log if e.is_list)
    span = log[-1].at - log[0].at if len(log) > 1 else 0.0
    log_rate = len(log) / span if span > 0 else 0.0
    phase = marks.get("Run of ", 0.0) - marks.get("Sending ", 0.0)
    tool_rate = len(log) / phase if phase > 0 else 0.0
    size, records = ledger_size(out_dir)
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    success = summary.get("counts", {}).get("success", 0)
    n429 = statuses.get(429, 0)
    run = Run(
        ok=code == 0 and success == rows and n429 == 0,
        requests=len(log),
        log_rate=log_rate,
        tool_rate=tool_rate,
        cpu_per_1000=1000 * cpu / max(1, len(log)),
        bytes_per_row=size / rows,
        bytes_per_record=size / max(1, records),
        n429=n429,
    )
    print(
        f"  run {number}: exit {code}, {success}/{rows} latched; {run.requests} requests "
        f"({reads} list reads, {run.requests - reads} others), statuses {dict(statuses)}; "
        f"{log_rate:.1f} req/s over {span:.2f} s in the sandbox log "
        f"({log_rate / RATE:.3f} of --rate), {tool_rate:.1f} req/s over the tool's sending "
        f"phase ({phase:.2f} s); CPU {cpu:.2f} s (user {user:.2f}, system {system:.2f}) = "
        f"{run.cpu_per_1000:.2f} s per 1,000 requests; job.db {size:,} bytes, "
        f"{records:,} log lines: {run.bytes_per_row:.1f} bytes a row, "
        f"{run.bytes_per_record:.1f} a line"
    )
    return run


def open_writes(out_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(out_dir / "job.db")) as con:
        return int(con.execute("SELECT count(*) FROM open_writes").fetchone()[0])


def killed_job(source: Path, rows: int, latency_ms: int, kills: int) -> bool:
    """One job killed with SIGKILL ``kills`` times mid-run, then run to the end."""
    out_dir = OUT / "killed"
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "batch_latch", "run", str(source), "--out", str(out_dir)]
    cmd += ["--rate", str(RATE), "--workers", str(WORKERS), "--no-progress"]
    rng = random.Random(20261207)
    in_flight: list[int] = []
    config = SandboxConfig(rate_limit=100_000.0, latency_ms=latency_ms)
    with Sandbox(config) as sandbox:
        env = {
            **os.environ,
            "FUSEBILL_API_KEY": sandbox.config.api_key,
            "FUSEBILL_BASE_URL": sandbox.base_url,
        }
        for n in range(1, kills + 1):
            before = len(sandbox.requests_log())
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            while len(sandbox.requests_log()) == before and proc.poll() is None:
                time.sleep(0.01)  # traffic started (the sheet is read, the ledger open)
            time.sleep(rng.uniform(*KILL_AFTER_S))
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            opened = open_writes(out_dir)
            in_flight.append(opened)
            latched = sum(1 for e in sandbox.requests_log() if e.method == "POST")
            print(
                f"  kill {n}: {'SIGKILL mid-run' if alive else 'ended before the kill'}; "
                f"{latched:,} latches sent so far; open writes in job.db: {opened}"
            )
        code, _, _ = run_cli(cmd, env, timeout=60 + 3 * rows / RATE)
        log = sandbox.requests_log()
        holds = sum(1 for i in range(rows) if sandbox.geotab_id_of(1_000_000 + i) == f"G{i:07d}")
    posts = Counter(e.fusebill_id for e in log if e.method == "POST")
    twice = sum(1 for n in posts.values() if n > 1)
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    success = summary.get("counts", {}).get("success", 0)
    allowed = sum(in_flight)
    print(
        f"  then to the end: exit {code}, {success:,}/{rows:,} success, {holds:,} customers "
        f"hold their geotabId in the sandbox; {sum(posts.values()):,} latches POSTed for "
        f"{len(posts):,} customers: {twice} sent twice or more (writes in flight at the "
        f"kills: {allowed}, allowed beyond them: 0)"
    )
    ok = code == 0 and success == rows and holds == rows and twice <= allowed
    print(
        f"{'PASS' if ok else 'FAIL'}: {kills} x kill -9 then finish, {twice} pairs sent twice "
        f"(target: at most the {allowed} in flight; 0 beyond them)"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="new rows a run (20000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is judged (3)")
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox latency (0)")
    parser.add_argument("--kills", type=int, default=3, help="kill -9s of one more job (3)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"{args.runs} runs of {args.rows:,} new rows at --rate {RATE} --workers {WORKERS}, "
        f"sandbox latency {args.latency_ms} ms"
    )
    source = OUT / f"rows-{args.rows}.csv"
    write_rows(source, args.rows)
    runs = [one_run(source, args.rows, args.latency_ms, n) for n in range(1, args.runs + 1)]
    rate = statistics.median(r.log_rate for r in runs)
    share = rate / RATE
    per_row = statistics.median(r.bytes_per_row for r in runs)
    print(
        f"median of {len(runs)}: {statistics.median(r.requests for r in runs):g} requests, "
        f"{rate:.1f} req/s in the sandbox log ({share:.3f} of --rate; v3 199.2, 0.996), "
        f"{statistics.median(r.tool_rate for r in runs):.1f} req/s over the tool's sending "
        f"phase, {statistics.median(r.cpu_per_1000 for r in runs):.2f} CPU-s per 1,000 "
        f"requests (v3 3.21), job.db {per_row:.1f} bytes a row "
        f"({statistics.median(r.bytes_per_record for r in runs):.1f} a line; v3 checkpoint "
        f"118 a row), {sum(r.n429 for r in runs)} 429s"
    )
    ok = share >= TARGET_SHARE and all(r.ok for r in runs)
    print(
        f"{'PASS' if ok else 'FAIL'}: write-ahead, share {share:.3f} (target >= {TARGET_SHARE}), "
        f"{sum(r.ok for r in runs)}/{len(runs)} runs clean (exit 0, all latched, no 429s)"
    )
    if args.kills:
        print(f"machine: {machine()}")
        print(f"one job of {args.rows:,} rows, {args.kills} x kill -9 mid-run, then to the end:")
        ok = killed_job(source, args.rows, args.latency_ms, args.kills) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
