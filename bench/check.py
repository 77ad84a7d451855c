"""``batch-latch check INPUT`` against the sandbox at 50 ms latency: the requests it sends
(the contract allows five) and its wall time, process start included (the bound is 3 s).

Run: ``python bench/check.py [--rows N] [--latency-ms MS]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

from _common import machine, run_child

from batch_latch.sandbox import Sandbox, SandboxConfig

KEY = "bench-check-key"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    print(machine())
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(SandboxConfig(api_key=KEY, port=0, latency_ms=args.latency_ms)) as sandbox,
    ):
        folder = Path(tmp)
        source = folder / "in.csv"
        with source.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["fusebillId", "geotabId"])
            writer.writerows((1_000_000 + i, f"G{i:06d}") for i in range(args.rows))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(FUSEBILL_API_KEY=KEY, FUSEBILL_BASE_URL=sandbox.base_url)
        cmd = [sys.executable, "-m", "batch_latch", "check", str(source)]
        done = run_child(cmd, cwd=folder, err_path=folder / "err.txt", timeout=60, env=env)
        requests = len(sandbox.requests_log())
    print(
        f"check of {args.rows:,} rows at {args.latency_ms} ms latency: exit {done.code}, "
        f"{requests} requests (bound 5), {done.wall:.2f} s wall (bound 3 s), "
        f"peak RSS {done.rss_mb:.0f} MB"
    )
    return 0 if done.code == 0 and requests <= 5 and done.wall <= 3.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
