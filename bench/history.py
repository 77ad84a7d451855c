"""Benchmark: ``status`` and ``undo --dry-run`` of a 1,000,000-row job with 20 runs.

Builds on ``bench/resume.py``'s finished job (run that first, or this script builds the
same one): one real no-op re-run through the CLI makes a real run folder, which is then
copied until the job has 20 runs. Times, as subprocesses, three times each:

* ``python -m batch_latch status OUT`` — target at most 2 s wall (median);
* ``python -m batch_latch undo OUT --dry-run`` — target at most 5 s wall (median).

    python bench/history.py [--rows N] [--runs K]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

from _common import machine, run_child
from resume import OUT, ROOT, build_checkpoint, generate

from batch_latch.sandbox import Sandbox, SandboxConfig

STATUS_TARGET_S = 2.0
UNDO_TARGET_S = 5.0
RUN_FOLDERS = 20
TIMEOUT_S = 300.0


def prepare(sandbox: Sandbox, rows: int) -> tuple[Path, dict[str, str]]:
    job = OUT / "history-job"
    build_checkpoint(job, sandbox.base_url, rows)
    source = OUT / f"input-{rows}.csv"
    if not source.exists():
        generate(source, rows)
    env = dict(os.environ)
    env["FUSEBILL_API_KEY"] = sandbox.config.api_key
    env["FUSEBILL_BASE_URL"] = sandbox.base_url
    cmd = [sys.executable, "-m", "batch_latch", "run", str(source), "--out", str(job)]
    child = run_child(
        [*cmd, "--no-progress"],
        cwd=ROOT,
        env=env,
        err_path=OUT / "history-err.txt",
        timeout=TIMEOUT_S,
    )
    runs = sorted((job / "runs").iterdir())
    first = runs[-1]
    print(f"one real re-run: exit {child.code}, wall {child.wall:.2f} s -> {first.name}")
    for n in range(len(runs), RUN_FOLDERS):
        copy = first.with_name(f"{first.name}-copy{n:02d}")
        shutil.copytree(first, copy)
    print(f"job folder: {len(list((job / 'runs').iterdir()))} run folders")
    return job, env


def time_command(name: str, cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    walls = []
    for n in range(1, runs + 1):
        child = run_child(
            cmd, cwd=ROOT, env=env, err_path=OUT / f"{name}-err.txt", timeout=TIMEOUT_S
        )
        walls.append(child.wall)
        print(
            f"{name} run {n}: exit {child.code}, wall {child.wall:.2f} s (CPU {child.cpu:.2f} s), "
            f"peak RSS {child.rss_mb:.0f} MB"
        )
    return walls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with Sandbox(SandboxConfig()) as sandbox:
        job, env = prepare(sandbox, args.rows)
        base = [sys.executable, "-m", "batch_latch"]
        status = time_command("status", [*base, "status", str(job)], env, args.runs)
        undo = time_command(
            "undo --dry-run",
            [*base, "undo", str(job), "--dry-run", "--no-progress"],
            env,
            args.runs,
        )
        summary = json.loads((job / "summary.json").read_text())
        print(f"undo --dry-run listed {summary['rows']:,} customers")
        sent = len(sandbox.requests_log())
    ok = sent == 0 and summary["rows"] == args.rows
    s_med, u_med = statistics.median(status), statistics.median(undo)
    print(
        f"status: best {min(status):.2f} s, median {s_med:.2f} s (target <= {STATUS_TARGET_S:g} s)"
    )
    print(
        f"undo --dry-run: best {min(undo):.2f} s, median {u_med:.2f} s "
        f"(target <= {UNDO_TARGET_S:g} s)"
    )
    passed = ok and s_med <= STATUS_TARGET_S and u_med <= UNDO_TARGET_S
    print(
        ("PASS" if passed else "FAIL") + f": history of a {args.rows:,}-row job, sandbox saw {sent}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
