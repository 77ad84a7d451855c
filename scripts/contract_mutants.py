"""Hand-made mutants of the contract's numbers, each of which the tests must kill.

mutmut 3 (``docs/mutation.md``) mutates code inside functions only: a module constant
(``STALE_AFTER``, the option defaults in ``optiontypes``) or a dataclass field's default
(``Summary.read_batch``) is never changed by it. This script changes each such number the
contract fixes, one at a time, in a scratch copy of the repository, runs the tests that
pin it, and says whether they failed (killed) or passed (survived).

Usage (from the repository root, in the project's virtual environment)::

    python scripts/contract_mutants.py            # every mutant; exit 1 if one survives
    python scripts/contract_mutants.py --list     # what it would change
    python scripts/contract_mutants.py stale      # only the mutants whose name has "stale"
    python scripts/contract_mutants.py -v         # and name the tests that killed each

Not run by ``.ci/run`` (about a minute and a half on 2 cores); run it after changing one of
these numbers or the tests that pin them. The working tree is never changed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("batch_latch", "tests", "sample_data", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # from the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]
    why: str  # the contract's words the tests pin


STATUS_TESTS = ("tests/commands/test_status_estimate_defaults.py",)
SETTINGS_TESTS = ("tests/test_settings.py",)
DECISION_TESTS = ("tests/send/test_staleness_bound.py", "tests/send/test_decisions.py")

MUTANTS = (
    Mutant(
        "stale-4500",
        "batch_latch/send/reads.py",
        "STALE_AFTER = 45.0",
        "STALE_AFTER = 4500.0",
        DECISION_TESTS,
        "no customer is written on a read more than 60 s old",
    ),
    Mutant(
        "stale-61",
        "batch_latch/send/reads.py",
        "STALE_AFTER = 45.0",
        "STALE_AFTER = 61.0",
        DECISION_TESTS,
        "no customer is written on a read more than 60 s old",
    ),
    Mutant(
        "status-default-rate",
        "batch_latch/commands/status.py",
        "or DEFAULT_RATE",
        "or 20.0",
        STATUS_TESTS,
        "status estimates a job with no run's pace at --rate 10",
    ),
    Mutant(
        "status-default-read-batch",
        "batch_latch/commands/status.py",
        "else DEFAULT_READ_BATCH",
        "else 1",
        STATUS_TESTS,
        "status estimates a job with no finished run at --read-batch 100",
    ),
    Mutant(
        "summary-read-batch-default",
        "batch_latch/reports/writer.py",
        "read_batch: int = DEFAULT_READ_BATCH",
        "read_batch: int = 1",
        STATUS_TESTS + SETTINGS_TESTS,
        "a summary.json without read_batch was read 100 a request",
    ),
    Mutant(
        "read-batch-cap-5000",
        "batch_latch/optiontypes.py",
        "MAX_READ_BATCH = 500",
        "MAX_READ_BATCH = 5000",
        SETTINGS_TESTS,
        "--read-batch is 1 to 500",
    ),
    Mutant(
        "read-batch-cap-499",
        "batch_latch/optiontypes.py",
        "if value > MAX_READ_BATCH:",
        "if value >= MAX_READ_BATCH:",
        SETTINGS_TESTS,
        "--read-batch is 1 to 500",
    ),
    Mutant(
        "default-rate",
        "batch_latch/optiontypes.py",
        "DEFAULT_RATE = 10.0",
        "DEFAULT_RATE = 20.0",
        SETTINGS_TESTS,
        "--rate defaults to 10",
    ),
    Mutant(
        "default-workers",
        "batch_latch/optiontypes.py",
        "DEFAULT_WORKERS = 8",
        "DEFAULT_WORKERS = 9",
        SETTINGS_TESTS,
        "--workers defaults to 8",
    ),
    Mutant(
        "default-max-attempts",
        "batch_latch/optiontypes.py",
        "DEFAULT_MAX_ATTEMPTS = 5",
        "DEFAULT_MAX_ATTEMPTS = 6",
        SETTINGS_TESTS,
        "--max-attempts defaults to 5",
    ),
    Mutant(
        "default-timeout",
        "batch_latch/optiontypes.py",
        "DEFAULT_TIMEOUT = 30.0",
        "DEFAULT_TIMEOUT = 31.0",
        SETTINGS_TESTS,
        "--timeout defaults to 30",
    ),
    Mutant(
        "default-read-batch",
        "batch_latch/optiontypes.py",
        "DEFAULT_READ_BATCH = 100",
        "DEFAULT_READ_BATCH = 101",
        SETTINGS_TESTS,
        "--read-batch defaults to 100",
    ),
    Mutant(
        "default-quota-reserve",
        "batch_latch/optiontypes.py",
        'DEFAULT_RESERVE = quota_reserve("10%")',
        'DEFAULT_RESERVE = quota_reserve("11%")',
        SETTINGS_TESTS,
        "--quota-reserve defaults to 10%",
    ),
)


def scratch_copy(into: Path) -> None:
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(source, into / name, ignore=ignore)
        else:
            shutil.copy2(source, into / name)


def apply(root: Path, mutant: Mutant) -> None:
    path = root / mutant.path
    text = path.read_text(encoding="utf-8")
    found = text.count(mutant.old)
    if found != 1:
        raise SystemExit(f"{mutant.name}: {mutant.old!r} occurs {found} times in {mutant.path}")
    path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, list[str]]:
    """pytest in the copy (its own ``batch_latch`` first on the path), one process: its
    exit code and the tests that failed."""
    command = [sys.executable, "-m", "pytest", "-q", "-rf", "-n", "0", "-p", "no:cacheprovider"]
    done = subprocess.run([*command, *tests], cwd=root, capture_output=True, text=True, check=False)
    failed = [
        line.split()[1].split("::", 1)[1]
        for line in done.stdout.splitlines()
        if line.startswith("FAILED ") and "::" in line
    ]
    return done.returncode, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="?", default="", help="run the mutants whose name has it")
    parser.add_argument("--list", action="store_true", help="list the mutants; run nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="name the tests that failed")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.only in m.name]
    if args.list:
        for m in chosen:
            print(f"{m.name:<28} {m.path}: {m.old!r} -> {m.new!r}  ({m.why})")
        return 0
    every_test = tuple(sorted({t for m in chosen for t in m.tests}))
    with tempfile.TemporaryDirectory(prefix="contract-mutant-") as scratch:
        scratch_copy(Path(scratch))
        clean, _ = run_tests(Path(scratch), every_test)
    if clean != 0:
        print(f"the tests fail unmutated (exit {clean}): fix them first")
        return 2
    survived = []
    for mutant in chosen:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="contract-mutant-") as scratch:
            root = Path(scratch)
            scratch_copy(root)
            apply(root, mutant)
            code, failed = run_tests(root, mutant.tests)
        took = time.monotonic() - started
        verdict = "killed" if code == 1 else "SURVIVED" if code == 0 else f"error (exit {code})"
        print(f"{verdict:<9} {mutant.name:<28} {took:5.1f} s  {mutant.why}")
        for name in failed if args.verbose else ():
            print(f"          failed: {name}")
        if code != 1:
            survived.append(mutant.name)
    print(f"{len(chosen) - len(survived)} of {len(chosen)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
