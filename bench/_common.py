"""What the benchmark scripts share: the machine line and timing one child process.

Imported as ``_common`` (the scripts run as ``python bench/NAME.py``, so ``bench/`` is on
``sys.path``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# The children run as an installed batch-latch does: with its bytecode cached (pip compiles
# it at install). This project's machines set PYTHONDONTWRITEBYTECODE, which would have every
# child compile the package from source again, a cost no user's run has.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@dataclass(frozen=True)
class ChildRun:
    code: int
    wall: float  # seconds, spawn to reap
    rss_mb: float  # peak RSS of this one child
    cpu: float  # user + system seconds


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"load average {load} (other work on the machine skews the figures)"
    )


def run_child(
    cmd: list[str], *, cwd: Path, err_path: Path, timeout: float, env: dict[str, str] | None = None
) -> ChildRun:
    """Run one child and read its own rusage from ``os.wait4`` (``RUSAGE_CHILDREN`` would
    give the largest RSS of every child so far, so it cannot tell run 2 from run 1)."""
    with err_path.open("wb") as err_file:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err_file)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = err_path.read_text(errors="replace").strip()
    if err:
        print(f"  child stderr: {err[:500]}")
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(proc.returncode, wall, usage.ru_maxrss / 1024, cpu)  # Linux: KiB


def profile(
    cmd: list[str], *, cwd: Path, stats: Path, timeout: float, env: dict[str, str] | None = None
) -> None:
    """One more run under cProfile; print the top 30 functions by cumulative time."""
    profiled = [sys.executable, "-m", "cProfile", "-o", str(stats), *cmd[1:]]
    subprocess.run(
        profiled, cwd=cwd, env=env, stdout=subprocess.DEVNULL, timeout=timeout, check=False
    )
    import pstats

    print("\nProfile of one run (top 30 by cumulative time):")
    pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(30)
