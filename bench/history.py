"""Benchmark: ``status``, ``status --customer`` and ``undo --dry-run`` of a 1,000,000-row
job with 20 commands, and what its ``job.db`` weighs.

Builds the job's ledger directly through ``Ledger``'s public methods (``begin``,
``remember_input``, ``record_many``, ``end``), as twenty real commands on one sheet of
1,000,000 rows (``bench/resume.py``'s sheet: row i is fusebillId 1,000,000 + i) would have
left it; every line is one the CLI writes (a write's intent ``writing`` before its outcome):

 1. a dry run of the sheet (no lines);
 2. a plan of a 10,000-row trial sheet (its first rows): ``valid`` lines, 1 % ``relatch``
    (those customers hold ``OLD<i>``), 0.2 % ``not_found``;
 3. ``run --plan`` of it: intent + ``success`` for new and reviewed relatch rows;
 4-13. ten runs of the whole sheet, each stopped at ``--max-requests`` after ~99,000 rows:
    intent + ``success``/``new``, the customers holding another id ``failed``
    (``relatch_refused``), 0.2 % ``not_found``; run 8 is killed (no end, its last 16 writes
    open), run 9 settles those by its reads (``success``, "landed");
 14. ``failed.csv`` fed back, fixed: half the refused rows relatched (``--allow-relatch``),
    the other half given the geotabId the customer holds (``unchanged``, the old pair
    ``fixed``);
 15. ``--retry-not-found``: the not-found rows again;
 16. ``undo --dry-run`` (no lines);
 17. ``undo`` stopped after 50,000 customers (intent + ``success``/``undo``);
 18. a plan of the whole sheet: the 50,000 undone rows ``valid``;
 19. a run latching them again;
 20. a re-run with nothing left (no lines).

Then times, as subprocesses, three times each (median judged):

* ``python -m batch_latch status OUT`` — target at most 2 s;
* ``python -m batch_latch status OUT --customer ID`` — target at most 1 s;
* ``python -m batch_latch undo OUT --dry-run`` — target at most 5 s;

and prints ``job.db``'s bytes per row the job touched (distinct sheet rows with a line;
target at most 300, v3 checkpoint 118 a row) and where they go (SQLite's ``dbstat``).

    python bench/history.py [--rows N] [--runs K] [--keep]

``--keep`` reuses the job built by an earlier call (``bench/out/history/job``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import ChildRun, machine, run_child
from resume import generate, pair

from batch_latch.jobfolder.ledger import FILENAME, WRITING, Entry, Ledger

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "history"
BASE_URL = "http://127.0.0.1:9/v1"  # nothing is sent: status and undo --dry-run only read
STATUS_TARGET_S = 2.0
CUSTOMER_TARGET_S = 1.0
UNDO_TARGET_S = 5.0
BYTES_TARGET = 300.0
TIMEOUT_S = 300.0
TRIAL = 10_000
CHUNK = 99_000
UNDONE = 50_000
KILLED_OPEN = 16
BATCH = 50_000
LANDED = "latched by an earlier run whose answer was lost (a later read showed it)"


def held(i: int) -> bool:
    """The customer already holds another geotabId (``OLD<i>``)."""
    return i % 100 == 7


def missing(i: int) -> bool:
    return i % 500 == 11


class Builder:
    """Commands on the ledger, their lines in batches, a clock that moves on."""

    def __init__(self, ledger: Ledger, source: Path) -> None:
        self.ledger = ledger
        self.source = source
        self.clock = 1_796_000_000  # 2026-11-30
        self.n = 0
        self.lines = 0

    def at(self) -> str:
        self.clock += 1
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock))

    @contextlib.contextmanager
    def command(
        self,
        kind: str,
        sha: str = "",
        *,
        plan: str | None = None,
        fresh: bool = False,
        killed: bool = False,
        stop: str | None = None,
        rows: int = 0,
    ) -> Iterator[list[Entry]]:
        self.n += 1
        run_id = f"20261130T{self.n:02d}0000.000Z-{kind.replace('_', '-')}"
        self.clock += 600
        command = self.ledger.begin(
            run_id,
            kind,
            started_at=self.at(),
            user="ops",
            host="vm",
            input=str(self.source),
            input_sha256=sha,
            base_url=BASE_URL,
            plan_run_id=plan,
            fresh=fresh,
            pid=4242,
        )
        entries: list[Entry] = []
        yield entries
        for start in range(0, len(entries), BATCH):
            self.ledger.record_many(entries[start : start + BATCH], command)
        self.lines += len(entries)
        if not killed:
            self.ledger.end(
                command,
                ended_at=self.at(),
                exit_code=3 if stop else 0,
                requests=len(entries),
                rows=rows,
                invalid=0,
                stop_reason=stop,
                by_day={self.at()[:10]: len(entries)},
            )
        self.last = run_id

    def input(self, sha: str, indexes: list[int], gids: list[str]) -> None:
        rows = np.asarray(indexes, dtype=np.int64) + 2
        fids = np.asarray(indexes, dtype=np.int64) + 1_000_000
        self.ledger.remember_input(sha, rows, fids, pa.array(gids, pa.string()))

    def latch(self, entries: list[Entry], i: int, gid: str, change: str, previous: str) -> None:
        fid, row, t = 1_000_000 + i, i + 2, self.at()
        entries.append(Entry(fid, gid, WRITING, change, previous, at=t, row=row))
        entries.append(
            Entry(fid, gid, "success", change, previous, "", 200, "latched", t, row, True)
        )

    def outcome_of_read(self, entries: list[Entry], i: int, gid: str) -> bool:
        """A row whose read settles it without a write; False: it is to be written."""
        fid, row, t = 1_000_000 + i, i + 2, self.at()
        if missing(i):
            message = f"customer {fid} not found"
            entries.append(Entry(fid, gid, "not_found", "", "", "", 404, message, t, row, True))
            return True
        if held(i):
            message = f"holds geotabId OLD{i}; not replaced (use --allow-relatch)"
            key = "relatch_refused"
            entries.append(
                Entry(fid, gid, "failed", "", f"OLD{i}", key, 200, message, t, row, True)
            )
            return True
        return False


def build(job: Path, source: Path, rows: int) -> tuple[int, float]:
    shutil.rmtree(job, ignore_errors=True)
    began = time.perf_counter()
    full = hashlib.sha256(source.read_bytes()).hexdigest()
    trial = hashlib.sha256(b"trial sheet").hexdigest()
    fix = hashlib.sha256(b"failed.csv fed back").hexdigest()
    gids = [pair(i)[1] for i in range(rows)]
    ledger = Ledger.open(job)
    b = Builder(ledger, source)
    try:
        with b.command("dry_run", full, rows=rows):
            pass
        with b.command("plan", trial, rows=TRIAL) as e:
            b.input(trial, list(range(TRIAL)), gids[:TRIAL])
            for i in range(TRIAL):
                fid, t = 1_000_000 + i, b.at()
                if missing(i):
                    e.append(
                        Entry(fid, gids[i], "not_found", "", "", "", 404, "not found", t, i + 2)
                    )
                elif held(i):
                    msg = f"run --plan will replace OLD{i}"
                    e.append(
                        Entry(fid, gids[i], "valid", "relatch", f"OLD{i}", "", 200, msg, t, i + 2)
                    )
                else:
                    e.append(Entry(fid, gids[i], "valid", "new", "", "", 200, "", t, i + 2))
        plan = b.last
        with b.command("run", trial, plan=plan, rows=TRIAL) as e:
            for i in range(TRIAL):
                if missing(i):
                    b.outcome_of_read(e, i, gids[i])
                elif held(i):
                    b.latch(e, i, gids[i], "relatch", f"OLD{i}")
                else:
                    b.latch(e, i, gids[i], "new", "")
        start, unanswered = TRIAL, list[int]()
        for k in range(10):
            end = rows if k == 9 else min(rows, start + CHUNK)
            killed = k == 4
            stop = None if k == 9 else "max_requests"
            with b.command("run", full, killed=killed, stop=stop, rows=rows) as e:
                if k == 0:
                    b.input(full, list(range(rows)), gids)
                for i in unanswered:  # the killed run's open writes, settled by a read
                    fid, t = 1_000_000 + i, b.at()
                    e.append(
                        Entry(fid, gids[i], "success", "new", "", "", None, LANDED, t, i + 2, True)
                    )
                unanswered = []
                for i in range(start, end):
                    if not b.outcome_of_read(e, i, gids[i]):
                        b.latch(e, i, gids[i], "new", "")
                if killed:  # its last writes never got their answer
                    answered = [j for j, x in enumerate(e) if x.status == "success"]
                    for j in reversed(answered[-KILLED_OPEN:]):
                        unanswered.append(e.pop(j).fusebill_id - 1_000_000)
            start = end
        refused = [i for i in range(TRIAL, rows) if held(i) and not missing(i)]
        with b.command("run", fix, rows=len(refused)) as e:
            fixed = [f"OLD{i}" if i % 200 == 107 else gids[i] for i in refused]
            b.input(fix, refused, fixed)
            for i, gid in zip(refused, fixed):
                if gid == gids[i]:
                    b.latch(e, i, gid, "relatch", f"OLD{i}")
                else:
                    fid, t = 1_000_000 + i, b.at()
                    e.append(
                        Entry(
                            fid,
                            gid,
                            "success",
                            "unchanged",
                            gid,
                            "",
                            200,
                            "already holds it",
                            t,
                            i + 2,
                            True,
                        )
                    )
        with b.command("run", full, rows=rows) as e:
            for i in range(TRIAL, rows):
                if missing(i):
                    b.outcome_of_read(e, i, gids[i])
        with b.command("undo_dry_run"):
            pass
        undone = range(TRIAL + CHUNK, TRIAL + CHUNK + UNDONE)
        with b.command("undo", stop="max_requests", rows=UNDONE) as e:
            for i in undone:
                if held(i) or missing(i):
                    continue
                fid, t = 1_000_000 + i, b.at()
                e.append(Entry(fid, "", WRITING, "undo", "", at=t, row=i + 2))
                e.append(
                    Entry(fid, "", "success", "undo", "", "", 200, "unlatched", t, i + 2, True)
                )
        with b.command("plan", full, rows=rows) as e:
            for i in undone:
                if not (held(i) or missing(i)):
                    fid, t = 1_000_000 + i, b.at()
                    e.append(Entry(fid, gids[i], "valid", "new", "", "", 200, "", t, i + 2))
        with b.command("run", full, rows=rows) as e:
            for i in undone:
                if not (held(i) or missing(i)):
                    b.latch(e, i, gids[i], "new", "")
        with b.command("run", full, rows=rows):
            pass
    finally:
        ledger.close()
    print(f"built {b.n} commands, {b.lines:,} log lines in {time.perf_counter() - began:.1f} s")
    return b.n, time.perf_counter() - began


def weigh(job: Path) -> float:
    """job.db's bytes per touched row, and where they go (dbstat: tables and indexes)."""
    size = sum(p.stat().st_size for p in job.glob(FILENAME + "*") if p.is_file())
    with contextlib.closing(sqlite3.connect(job / FILENAME)) as con:
        touched: int = con.execute("SELECT count(DISTINCT row) FROM log").fetchone()[0]
        lines = con.execute("SELECT count(*) FROM log").fetchone()[0]
        inputs = con.execute("SELECT count(*) FROM inputs").fetchone()[0]
        try:
            parts = con.execute(
                "SELECT name, SUM(pgsize), SUM(payload), COUNT(*) FROM dbstat "
                "GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        except sqlite3.OperationalError:
            parts = []
    per_row = size / max(1, touched)
    print(
        f"job.db: {size:,} bytes, {touched:,} sheet rows touched, {lines:,} log lines, "
        f"{inputs:,} input rows: {per_row:.1f} bytes a touched row "
        f"(target <= {BYTES_TARGET:g}; v3 checkpoint 118), {size / max(1, lines):.1f} a log line"
    )
    for name, pages, payload, count in parts:
        print(
            f"  {name:<22} {pages:>12,} bytes ({100 * pages / size:4.1f} %, "
            f"{pages / max(1, touched):6.1f} a row), payload {payload:,}, {count:,} pages"
        )
    return per_row


def time_command(name: str, cmd: list[str], env: dict[str, str], runs: int) -> list[ChildRun]:
    done = []
    for n in range(1, runs + 1):
        child = run_child(cmd, cwd=ROOT, env=env, err_path=OUT / "err.txt", timeout=TIMEOUT_S)
        done.append(child)
        print(
            f"{name} run {n}: exit {child.code}, wall {child.wall:.2f} s "
            f"(CPU {child.cpu:.2f} s), peak RSS {child.rss_mb:.0f} MB  [{machine()}]"
        )
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="reuse the job built before")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    source = ROOT / "bench" / "out" / "resume" / f"input-{args.rows}.csv"
    if not source.exists():
        generate(source, args.rows)
    job = OUT / "job"
    if not (args.keep and (job / FILENAME).exists()):
        build(job, source, args.rows)
    per_row = weigh(job)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBILL_")}
    env["FUSEBILL_BASE_URL"] = BASE_URL
    base = [sys.executable, "-m", "batch_latch"]
    customer = 1_000_000 + TRIAL + CHUNK + 2  # latched, undone, planned, latched again
    figures = {
        "status": (
            time_command("status", [*base, "status", str(job)], env, args.runs),
            STATUS_TARGET_S,
        ),
        "status --customer": (
            time_command(
                "status --customer",
                [*base, "status", str(job), "--customer", str(customer)],
                env,
                args.runs,
            ),
            CUSTOMER_TARGET_S,
        ),
        "undo --dry-run": (
            time_command(
                "undo --dry-run",
                [*base, "undo", str(job), "--dry-run", "--no-progress"],
                env,
                args.runs,
            ),
            UNDO_TARGET_S,
        ),
    }
    passed = per_row <= BYTES_TARGET
    for name, (done, target) in figures.items():
        median = statistics.median(c.wall for c in done)
        ok = median <= target and all(c.code == 0 for c in done)
        passed = passed and ok
        print(
            f"{name}: median {median:.2f} s (best {min(c.wall for c in done):.2f} s), peak RSS "
            f"{max(c.rss_mb for c in done):.0f} MB, exit {[c.code for c in done]} "
            f"(target <= {target:g} s) {'ok' if ok else 'MISSED'}"
        )
    print(("PASS" if passed else "FAIL") + f": history of a {args.rows:,}-row job, 20 commands")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
