"""``batch-latch status OUT``: the job at a glance, from its files alone (no requests).

Reads every run folder's ``summary.json`` and ``outcomes.arrow`` (row number and status, a
few bytes a row, written beside the reports). A row's latest outcome is the one the most
recent ``run`` gave it; a fed-back ``failed.csv`` keeps the sheet's row numbers, so a fix
run's rows land on the sheet's rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pyarrow.feather as feather

from batch_latch.errors import NotAJob
from batch_latch.jobfolder.checkpoint import FILENAME
from batch_latch.jobfolder.history import OUTCOMES, RUNS
from batch_latch.reports.writer import Summary
from batch_latch.send.estimate import Pace, how_long, requests_needed
from batch_latch.settings import Settings
from batch_latch.vocab import STATUSES, ExitCode, RunKind, Status

#: Rows a later run would still send.
_LEFT = (Status.PENDING.value, Status.VALID.value)


@dataclass(frozen=True)
class RunLine:
    folder: str
    started_at: str
    kind: str
    user: str
    host: str
    input: str
    rows: int
    requests: int
    exit_code: int
    stop_reason: str | None


@dataclass
class JobStatus:
    out: str
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    runs: list[RunLine] = field(default_factory=list)
    requests_by_day: dict[str, int] = field(default_factory=dict)
    left_rows: int = 0
    left_requests: int = 0
    estimate: str = ""


def _summaries(out: Path) -> list[tuple[Path, Summary]]:
    runs = out / RUNS
    if not (out / FILENAME).is_file() and not runs.is_dir():
        raise NotAJob(
            f"{out} is not a batch-latch job folder (no {FILENAME} and no {RUNS}/); give the "
            "--out folder of a run"
        )
    found = []
    for folder in sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []:
        path = folder / "summary.json"
        if not path.exists():
            continue  # a command still running, or one that died before its reports
        try:
            found.append((folder, Summary.load(path)))
        except (OSError, ValueError) as exc:
            raise NotAJob(
                f"{path} is damaged ({str(exc)[:80]}); move that run folder away and try again"
            ) from None
    return found


def _latest_rows(folders: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(row numbers, status codes): each row's outcome from the newest folder that has it."""
    rows_all, codes_all = [], []
    seen = np.zeros(0, dtype=bool)
    for folder in reversed(folders):
        path = folder / OUTCOMES
        if not path.exists():
            continue
        table = feather.read_table(str(path), memory_map=True)
        rows = np.asarray(table["row"].to_numpy(), dtype=np.int64)
        codes = np.asarray(table["status"].to_numpy(), dtype=np.int8)
        if len(rows) and rows.max() >= len(seen):
            seen = np.concatenate([seen, np.zeros(int(rows.max()) + 1 - len(seen), bool)])
        fresh = ~seen[rows]
        rows_all.append(rows[fresh])
        codes_all.append(codes[fresh])
        seen[rows] = True
    if not rows_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int8)
    return np.concatenate(rows_all), np.concatenate(codes_all)


def _add_run(job: JobStatus, folder: Path, s: Summary) -> None:
    job.runs.append(
        RunLine(
            folder.name,
            s.started_at,
            s.kind,
            s.user,
            s.host,
            Path(s.input).name,
            s.rows,
            s.requests,
            s.exit_code,
            s.stop_reason,
        )
    )
    for day, n in s.requests_by_day.items():
        job.requests_by_day[day] = job.requests_by_day.get(day, 0) + n


def collect(out: Path) -> JobStatus:
    summaries = _summaries(out)
    job = JobStatus(out=str(out))
    for folder, s in summaries:
        _add_run(job, folder, s)
    runs = [f for f, s in summaries if s.kind == RunKind.RUN.value]
    previews = [f for f, s in summaries if s.kind in (RunKind.DRY_RUN.value, RunKind.PLAN.value)]
    _, codes = _latest_rows(runs or previews[-1:])
    counts = np.bincount(codes[codes >= 0], minlength=len(STATUSES))
    job.counts = {name: int(counts[i]) for i, name in enumerate(STATUSES)}
    job.rows = len(codes)
    job.left_rows = sum(job.counts[s] for s in _LEFT) if runs else job.counts[Status.VALID.value]
    _estimate(job, [s for _, s in summaries])
    return job


def _estimate(job: JobStatus, summaries: list[Summary]) -> None:
    runs = [s for s in summaries if s.kind == RunKind.RUN.value]
    last = runs[-1] if runs else None
    reads = last.read_first if last else True
    batch = last.read_batch if last else 100
    job.left_requests = requests_needed(job.left_rows, reads=reads, writes=True, read_batch=batch)
    if not job.left_requests:
        job.estimate = "nothing left to send"
        return
    limits = next((s.account_limits for s in reversed(summaries) if s.account_limits), None)
    rate = (last.rate if last else 0.0) or 10.0
    pace = Pace(rate, *(limits.get("minute"), limits.get("day")) if limits else (None, None))
    job.estimate = how_long(job.left_requests, pace)


def show(settings: Settings, out: TextIO) -> int:
    if settings.customer is not None:  # one customer's story: its own module
        from batch_latch.commands import story

        return story.show(settings, out)
    job = collect(settings.out)
    if settings.json:
        out.write(json.dumps(asdict(job), indent=2) + "\n")
        return ExitCode.OK
    out.write(f"Job in {job.out}: {job.rows} rows (latest outcome of each over its runs)\n")
    for name in STATUSES:
        if job.counts.get(name):
            out.write(f"  {name:<10} {job.counts[name]:>9}\n")
    out.write(f"Runs ({len(job.runs)}):\n")
    for r in job.runs:
        stop = f" ({r.stop_reason})" if r.stop_reason else ""
        out.write(
            f"  {r.started_at:<21} {r.kind:<13} {r.user}@{r.host}  {r.input}  {r.rows} rows, "
            f"{r.requests} requests, exit {r.exit_code}{stop}\n"
        )
    if job.requests_by_day:
        out.write("Requests per UTC day:\n")
        for day in sorted(job.requests_by_day):
            out.write(f"  {day}  {job.requests_by_day[day]}\n")
    out.write(f"Left: {job.left_rows} rows, about {job.left_requests} requests: {job.estimate}\n")
    return ExitCode.OK
