"""``batch-latch status OUT``: the job at a glance, from its ledger alone (no requests).

Everything here is read from ``OUT/job.db``'s views: the counts are ``pairs`` grouped by
status (invalid rows counted apart, as rows of the newest input), what the job holds in
Fusebill is ``customers`` by state, the runs are ``runs``. What is left is the newest
input's rows a re-run would still read or send: rows a command has not reached yet (it is
running, or was killed) are left too.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from batch_latch.errors import NotAJob
from batch_latch.jobfolder import job as jobs
from batch_latch.jobfolder import ledger_views
from batch_latch.jobfolder.history import holder
from batch_latch.jobfolder.ledger import Ledger
from batch_latch.jobfolder.rerun_rules import REFUSAL_PATTERN
from batch_latch.optiontypes import DEFAULT_RATE, DEFAULT_READ_BATCH, DEFAULT_RESERVE, parse_reserve
from batch_latch.reports.writer import Summary, job_summaries
from batch_latch.send.estimate import Pace, estimate
from batch_latch.settings import Settings
from batch_latch.vocab import ExitCode, RunKind, command_words, plural

#: Pair statuses in the order status shows them (``pairs.status``, see ledger_views).
PAIR_STATUSES = (
    "success",
    "valid",
    "pending",
    "writing",
    "not_found",
    "failed",
    "fixed",
    "replaced",
    "undone",
)
_STATES = ("latched", "restored", "unknown")


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
    exit_code: int | None  # None: it is running, or was killed
    stop_reason: str | None
    plan: str | None = None  # the plan folder a ``run --plan`` applied

    @property
    def what(self) -> str:
        """``run``, ``run --plan``, ``plan``, ``dry-run``, ``undo`` or ``undo --dry-run``."""
        if self.plan:
            return f"{self.kind} --plan"
        words = command_words(self.kind)
        return self.kind if words is None else words.shown


@dataclass
class JobStatus:
    out: str
    rows: int = 0  # the job's pairs
    counts: dict[str, int] = field(default_factory=dict)
    runs: list[RunLine] = field(default_factory=list)
    requests_by_day: dict[str, int] = field(default_factory=dict)
    left_rows: int = 0
    left_requests: int = 0
    estimate: str = ""
    in_fusebill: dict[str, int] = field(default_factory=dict)
    #: While a command holds the job: its kind, pid, host, user and start.
    running: dict[str, object] | None = None
    killed: list[str] = field(default_factory=list)  # commands with no end recorded


def _ledger(out_dir: object) -> Ledger:
    out = Path(str(out_dir))
    if not jobs.exists(out):
        raise NotAJob(
            f"{out} is not a batch-latch job folder (no job.db); give the --out folder of a run"
        )
    return jobs.open_to_read(out)


def collect(settings_out: object) -> JobStatus:
    ledger = _ledger(settings_out)
    try:
        return _collect(ledger, str(settings_out))
    finally:
        ledger.close()


def _collect(ledger: Ledger, out: str) -> JobStatus:
    job = JobStatus(out=out)
    _running(ledger, out, job)
    for r in ledger.query(
        "SELECT run_id, started_at, kind, user, host, input, rows, requests, exit_code, "
        "stop_reason, plan_run_id, ended_at FROM commands ORDER BY id"
    ):
        job.runs.append(
            RunLine(
                folder=r[0],
                started_at=r[1],
                kind=r[2],
                user=r[3],
                host=r[4],
                input=Path(r[5]).name,
                rows=r[6] or 0,
                requests=r[7] or 0,
                exit_code=r[8],
                stop_reason=r[9],
                plan=r[10],
            )
        )
    for day, n in ledger.query(
        "SELECT day, SUM(requests) FROM requests_by_day GROUP BY day ORDER BY day"
    ):
        job.requests_by_day[str(day)] = int(n)
    newest = ledger.query(
        "SELECT input_sha256, invalid FROM commands WHERE kind IN ('run', 'plan') "
        "ORDER BY id DESC LIMIT 1"
    )
    counts: dict[str, int] = {}
    for status, n in ledger.query("SELECT status, n FROM pair_counts"):
        counts[str(status)] = counts.get(str(status), 0) + int(n)
    left, never = _inputs(ledger, newest[0][0] if newest else "")
    for status, n in never.items():
        counts[status] = counts.get(status, 0) + n
    job.counts = {name: counts.get(name, 0) for name in PAIR_STATUSES}
    job.counts["invalid"] = int(newest[0][1] or 0) if newest else 0
    job.rows = sum(v for k, v in job.counts.items() if k != "invalid")
    states = dict(ledger.query("SELECT state, n FROM customer_counts"))
    job.in_fusebill = {s: int(states.get(s, 0)) for s in _STATES}
    job.left_rows = left
    _estimate(job, [s for _, s in _summaries(out)])
    return job


def _summaries(out: str) -> list[tuple[Path, Summary]]:
    try:
        return list(job_summaries(Path(out)))
    except NotAJob:
        return []


def _inputs(ledger: Ledger, sha: str) -> tuple[int, dict[str, int]]:
    """One pass over the rows of the inputs a run or plan read, each joined with its pair's
    state: the rows of the newest input (``sha``) a re-run would still read or send, and
    the pairs no line has had yet (the ``pairs`` view's ``pending`` or ``writing`` ones,
    counted by status).

    Left: every valid row of the newest input but those whose pair is settled (success,
    not found, or refused by Fusebill) by a command since the newest ``--fresh`` start (the
    re-run rules forget what came before it)."""
    fresh = int(
        ledger.query(
            "SELECT COALESCE(MAX(id), 0) FROM commands WHERE fresh = 1 AND kind IN ('run', 'undo')"
        )[0][0]
    )
    # A pair's command is known by its run_id (the newest command of that name); those at
    # or after the fresh start may settle a row.
    since = [
        int(c)
        for (c,) in ledger.query(
            "SELECT c.id FROM commands c WHERE (SELECT MAX(d.id) FROM commands d "
            "WHERE d.run_id = c.run_id) >= ?",
            (fresh,),
        )
    ]
    recent = "1" if not fresh else f"p.command IN ({','.join(map(str, since)) or 'NULL'})"
    # CASE: the pattern only for a failed pair (a function call a row is a second a million)
    code = {word: n for n, word in enumerate(ledger_views.PAIR_WORDS)}  # as pair_state keeps it
    done = ", ".join(str(code[w]) for w in ("success", "not_found", "fixed"))
    settled = (
        f"(p.status IN ({done}) OR CASE WHEN p.status = {code['failed']} "
        f"THEN p.error_key REGEXP ? ELSE 0 END) AND {recent}"
    )
    never = "CASE WHEN p.fusebill_id IS NULL THEN r.fusebill_id || ' ' || r.geotab_id END"
    writing = (
        "EXISTS (SELECT 1 FROM open_writes w WHERE w.fusebill_id = r.fusebill_id "
        "AND w.geotab_id = r.geotab_id)"
    )
    got = ledger.query(
        "SELECT COALESCE(SUM(s.input_sha256 = ? AND NOT COALESCE(" + settled + ", 0)), 0), "
        f"count(DISTINCT CASE WHEN p.fusebill_id IS NULL AND {writing} THEN {never} END), "
        f"count(DISTINCT {never}) "
        "FROM sheets s JOIN sheet_rows r ON r.sheet = s.id "
        "LEFT JOIN pair_state p ON p.fusebill_id = r.fusebill_id AND p.geotab_id = r.geotab_id "
        "WHERE s.input_sha256 IN (SELECT input_sha256 FROM commands WHERE kind IN ('run', 'plan'))",
        (sha, REFUSAL_PATTERN),
    )
    left, writes, pairs = (int(v) for v in got[0])
    return left, {"writing": writes, "pending": pairs - writes}


def _running(ledger: Ledger, out: str, job: JobStatus) -> None:
    """Who holds the job now (``running``), and the commands that never recorded an end
    and are not running: killed (or the machine stopped under them). The holder is the
    newest open command when the lock's pid and host are its own; else (it has not begun
    its line yet, e.g. while it takes a v3 job in) what the lock says of it."""
    text = holder(Path(out))
    lock = re.fullmatch(r"pid (\d+) on (.*) since (\S+)", text or "")
    open_ = ledger.query(
        "SELECT run_id, kind, pid, host, user, started_at FROM commands WHERE ended_at IS NULL "
        "ORDER BY id"
    )
    if text is not None:
        newest = open_[-1] if open_ else None
        if newest is not None and (lock is None or (str(newest[2]), newest[3]) == lock.group(1, 2)):
            _run_id, kind, pid, host, user, since = open_.pop()
            job.running = {"kind": kind, "pid": pid, "host": host, "user": user, "since": since}
        else:
            pid_, host_, since_ = lock.group(1, 2, 3) if lock else (None, "", "")
            job.running = {
                "kind": "",
                "pid": int(pid_) if pid_ else None,
                "host": host_,
                "user": "",
                "since": since_,
            }
    job.killed = [r[0] for r in open_]


def _estimate(job: JobStatus, summaries: list[Summary]) -> None:
    """The command's own estimator, with the last run's pace and the account's limits."""
    runs = [s for s in summaries if s.kind is RunKind.RUN]
    last = runs[-1] if runs else None
    limits = next((s.account_limits for s in reversed(summaries) if s.account_limits), None)
    rate = (last.rate if last else 0.0) or DEFAULT_RATE
    minute, day = (limits.get("minute"), limits.get("day")) if limits else (None, None)
    given = parse_reserve(last.quota_reserve) if last else DEFAULT_RESERVE
    reserve = given.of(day) if given else 0  # the run's own reserve, as its estimate counted
    pace = Pace(rate, minute, day, reserve)
    batch = last.read_batch if last else DEFAULT_READ_BATCH
    left = estimate(
        job.left_rows, pace, reads=last.read_first if last else True, writes=True, read_batch=batch
    )
    job.left_requests, job.estimate = left.requests, left.text


def show(settings: Settings, out: TextIO) -> int:
    if settings.customer is not None:  # one customer's story: its own module
        from batch_latch.commands import customer_story

        return customer_story.show(settings, out)
    job = collect(settings.out)
    if settings.json:
        out.write(json.dumps(asdict(job), indent=2) + "\n")
        return ExitCode.OK
    if job.running:
        now = job.running
        out.write(
            f"A command is running on this job now: {now['kind']} (pid {now['pid']} on "
            f"{now['host']}, {now['user']}, since {now['since']}).\n"
        )
    for run_id in job.killed:
        out.write(
            f"Command {run_id} never recorded its end: it was killed (or the machine "
            "stopped under it); its rows not reached are counted as left.\n"
        )
    out.write(
        f"Job in {job.out}: {plural(job.rows, 'pair')} (fusebillId, geotabId), each by its "
        "status in job.db's pairs view\n"
    )
    for name in (*PAIR_STATUSES, "invalid"):
        if job.counts.get(name):
            label = "invalid rows" if name == "invalid" else name
            out.write(f"  {label:<12} {job.counts[name]:>9,}\n")
    held = job.in_fusebill
    out.write(
        f"In Fusebill now: {plural(held['latched'], 'customer')} latched "
        f"by this job and not put back, {held['restored']:,} restored by undo, "
        f"{plural(held['unknown'], 'write')} with an unknown outcome\n"
    )
    out.write(f"Runs ({len(job.runs):,}):\n")
    for r in job.runs:
        ended = "running or killed" if r.exit_code is None else f"exit {r.exit_code}"
        stop = f" ({r.stop_reason})" if r.stop_reason else ""
        stop += f", applied plan {r.plan}" if r.plan else ""
        out.write(
            f"  {r.started_at:<21} {r.what:<15} {r.user}@{r.host}  {r.input}  "
            f"{plural(r.rows, 'row')}, {plural(r.requests, 'request')}, {ended}"
            f"{stop}\n"
        )
    if job.requests_by_day:
        out.write("Requests per UTC day:\n")
        for day in sorted(job.requests_by_day):
            out.write(f"  {day}  {job.requests_by_day[day]:,}\n")
    out.write(
        f"Left: {plural(job.left_rows, 'row')}, about {plural(job.left_requests, 'request')}: "
        f"{job.estimate}\n"
    )
    return ExitCode.OK
