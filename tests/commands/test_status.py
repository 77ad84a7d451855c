"""``status``: the job at a glance from its ledger (``OUT/job.db``) alone: the pairs view
counted by status, what the job holds in Fusebill, the runs, requests per UTC day, what is
left and how long it takes, who is running, and the commands that were killed.

Most jobs here are made by the commands themselves (``run``, ``undo``) against the
in-memory Fusebill; a killed command, which no test can kill, is made with ``Ledger``."""

from __future__ import annotations

import io
import json
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pytest
from pydantic import SecretStr

from batch_latch import cli
from batch_latch.commands import job as command_run
from batch_latch.commands import status
from batch_latch.errors import NotAJob
from batch_latch.jobfolder import history
from batch_latch.jobfolder.history import RUNS, JobBusy
from batch_latch.jobfolder.ledger import Entry, Ledger
from batch_latch.reports.writer import Summary
from batch_latch.send import session
from batch_latch.settings import Settings
from batch_latch.vocab import RunKind, Status, StopReason
from tests.doubles import Call, FakeFusebill, Landed, customer_object, timeout
from tests.ledgers import Record

URL = "http://127.0.0.1:9/v1"
KEY = "sk_test_FAKE_KEY"

#: One of each: new (1, 5), a relatch refused (2), not found (3), unchanged (4), an invalid
#: row (x) and a duplicate of row 5.
SHEET = "fusebillId,geotabId\n1,A\n2,B\n3,C\n4,D\nx,E\n4,D\n5,F\n"
CUSTOMERS: dict[int, str | None] = {1: None, 2: "OTHER", 4: "D", 5: None, 6: None}


@pytest.fixture
def fusebill(monkeypatch: pytest.MonkeyPatch) -> FakeFusebill:
    """The Fusebill every command of the test talks to (in memory, no network)."""
    fake = FakeFusebill(CUSTOMERS)
    monkeypatch.setattr(session, "make_service", lambda settings: fake)
    return fake


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def command(
    out: Path, kind: RunKind, source: Path | None = None, **options: Any
) -> command_run.JobResult:
    """One command as the CLI runs it (its line in job.db, its run folder, its reports)."""
    chosen = Settings(
        out=out,
        input=source,
        kind=kind,
        dry_run=kind is RunKind.DRY_RUN,
        rate=10_000.0,
        workers=1,  # one row after the other: what a test sees mid-run is known
        max_attempts=1,
        base_url=URL,
        api_key=SecretStr(KEY),
        progress=False,
        **options,
    )
    return command_run.run(chosen, stdout=io.StringIO(), stderr=io.StringIO())


def first_run(tmp_path: Path) -> Path:
    out = tmp_path / "job"
    assert command(out, RunKind.RUN, write(tmp_path / "in.csv", SHEET)).exit_code == 1
    return out


K = TypeVar("K", bound=str)


def nonzero(counts: Mapping[K, int]) -> dict[K, int]:
    return {k: v for k, v in counts.items() if v}


def pairs_by_status(out: Path) -> dict[str, int]:
    """``select status, count(*) from pairs group by status``, as any SQLite tool reads it."""
    db = sqlite3.connect(out / "job.db")
    try:
        return dict(db.execute("SELECT status, count(*) FROM pairs GROUP BY status"))
    finally:
        db.close()


def as_json(out: Path) -> dict[str, Any]:
    text = io.StringIO()
    assert status.show(Settings(out=out, json=True), text) == 0
    data: dict[str, Any] = json.loads(text.getvalue())
    return data


def as_text(out: Path) -> str:
    text = io.StringIO()
    assert status.show(Settings(out=out), text) == 0
    return text.getvalue()


def test_counts_are_the_pairs_view_by_status_and_invalid_rows_apart(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    out = first_run(tmp_path)
    got = status.collect(out)
    # Five pairs (the duplicate row is its pair's, counted once), and the invalid row.
    assert nonzero(got.counts) == {"success": 3, "failed": 1, "not_found": 1, "invalid": 1}
    assert pairs_by_status(out) == {"success": 3, "failed": 1, "not_found": 1}
    assert got.rows == 5
    assert got.in_fusebill == {"latched": 2, "restored": 0, "unknown": 0}  # 1 and 5
    # The refused relatch is read again by a re-run: 1 row left, a read and a write.
    assert (got.left_rows, got.left_requests) == (1, 2)
    assert got.running is None and got.killed == []
    assert [(r.kind, r.exit_code, r.rows) for r in got.runs] == [("run", 1, 7)]


def test_json_has_the_contracts_keys(tmp_path: Path, fusebill: FakeFusebill) -> None:
    out = first_run(tmp_path)
    data = as_json(out)
    assert data["in_fusebill"] == {"latched": 2, "restored": 0, "unknown": 0}
    assert set(data["in_fusebill"]) == {"latched", "restored", "unknown"}
    assert nonzero(data["counts"]) == {"success": 3, "failed": 1, "not_found": 1, "invalid": 1}
    assert data["left_rows"] == 1 and data["running"] is None
    assert [r["kind"] for r in data["runs"]] == ["run"]


def test_the_fix_loop_counts_the_fixed_pair_and_nothing_is_left(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    out = first_run(tmp_path)
    failed = out / "failed.csv"
    text = failed.read_text(encoding="utf-8-sig")
    assert text.count("\n") == 4  # header; rows 3 (refused), 4 (not found), 6 (invalid)
    fixed = text.replace('"2","B"', '"2","OTHER"').replace('"x","E"', '"6","E"')
    assert fixed.count('"2","OTHER"') == 1 and fixed.count('"6","E"') == 1
    write(failed, fixed)
    assert command(out, RunKind.RUN, failed).exit_code == 1  # 3 is still not found
    got = status.collect(out)
    # (2, B) was never latched and its sheet row went out as (2, OTHER): fixed.
    assert nonzero(got.counts) == {"success": 5, "not_found": 1, "fixed": 1}
    assert pairs_by_status(out) == {"success": 5, "not_found": 1, "fixed": 1}
    assert got.in_fusebill == {"latched": 3, "restored": 0, "unknown": 0}  # 1, 5 and 6
    assert (got.left_rows, got.left_requests, got.estimate) == (0, 0, "nothing left to send")
    assert "Left: 0 rows, about 0 requests: nothing left to send" in as_text(out)


def test_after_a_full_undo_the_pairs_are_undone_and_left_again(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    out = tmp_path / "job"
    source = write(tmp_path / "in.csv", "fusebillId,geotabId\n1,A\n5,F\n")
    assert command(out, RunKind.RUN, source).exit_code == 0
    assert nonzero(status.collect(out).counts) == {"success": 2}
    assert command(out, RunKind.UNDO).exit_code == 0
    assert fusebill.held(1) is None and fusebill.held(5) is None
    got = status.collect(out)
    assert nonzero(got.counts) == {"undone": 2}
    assert pairs_by_status(out) == {"undone": 2}
    assert got.in_fusebill == {"latched": 0, "restored": 2, "unknown": 0}
    assert got.left_rows == 2  # a re-run of the sheet would latch them again
    shown = as_text(out)
    assert "  success" not in shown and "nothing left" not in shown
    assert "undone" in shown and "Left: 2 rows" in shown


def test_while_a_run_writes_status_says_who_and_what_is_left(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    """Status read from inside the run, as its write to customer 5 is on the wire: the run
    holds the job, that write is ``writing`` (its outcome unknown), and the rows not
    reached yet are left."""
    seen: list[status.JobStatus] = []
    out = tmp_path / "job"

    def look(call: Call) -> None:
        if call.method == "latch" and call.fusebill_id == 5:
            seen.append(status.collect(out))

    fusebill.on_call = look
    source = write(tmp_path / "in.csv", "fusebillId,geotabId\n1,A\n5,F\n6,G\nx,H\n")
    assert command(out, RunKind.RUN, source, read_batch=1).exit_code == 1  # x is invalid
    assert len(seen) == 1
    during = seen[0]
    assert during.running is not None
    assert set(during.running) == {"kind", "pid", "host", "user", "since"}
    assert (during.running["kind"], during.running["pid"]) == ("run", os.getpid())
    assert (during.running["host"], during.running["user"]) == (history.host(), history.user())
    assert during.running["since"] == during.runs[0].started_at
    assert during.killed == []
    assert nonzero(during.counts) == {"success": 1, "writing": 1, "pending": 1, "invalid": 1}
    assert during.in_fusebill == {"latched": 1, "restored": 0, "unknown": 1}
    assert during.left_rows == 2  # 5 (its answer has not come) and 6 (not reached)
    assert (during.runs[0].exit_code, during.runs[0].rows) == (None, 4)
    after = status.collect(out)
    assert after.running is None and after.left_rows == 0
    assert after.in_fusebill == {"latched": 3, "restored": 0, "unknown": 0}


def killed_job(
    out: Path,
    rows: int,
    lines: list[Entry],
    sha: str = "9" * 64,
    pid: int = 4242,
    host: str = "desk",
) -> str:
    """A run of ``rows`` valid rows (fusebillId n, geotabId Gn, on sheet row n) that
    recorded ``lines``, then was killed: its line in ``commands`` never got an end."""
    ledger = Ledger.open(out)
    try:
        ledger.begin(
            "20260301T110000.000Z-run",
            "run",
            started_at="2026-03-01T11:00:00Z",
            user="ops",
            host=host,
            input="/data/in.csv",
            input_sha256=sha,
            base_url=URL,
            pid=pid,
        )
        n = np.arange(2, rows + 2, dtype=np.int64)
        ledger.remember_input(sha, n, n, pa.array([f"G{i}" for i in n.tolist()]))
        for line in lines:
            ledger.record(line)
    finally:
        ledger.close()
    return "20260301T110000.000Z-run"


def latched(fid: int) -> Entry:
    return Record(fid, f"G{fid}", "success", 200, "latched", "", "2026-03-01T11:00:01Z", "new")


def test_a_killed_command_is_said_and_the_rows_it_did_not_reach_are_left(
    tmp_path: Path,
) -> None:
    out = tmp_path / "job"
    run_id = killed_job(out, 5, [latched(2), latched(3)])
    got = status.collect(out)
    assert got.running is None  # nothing holds the job: the command is gone
    assert got.killed == [run_id]
    assert got.left_rows == 3
    assert nonzero(got.counts) == {"success": 2, "pending": 3}
    shown = as_text(out)
    assert f"Command {run_id} never recorded its end: it was killed" in shown
    assert "running or killed" in shown and "Left: 3 rows" in shown


def test_a_write_whose_answer_a_kill_lost_is_unknown_in_fusebill(tmp_path: Path) -> None:
    out = tmp_path / "job"
    sent = Entry(3, "G3", "writing", "new", "", at="2026-03-01T11:00:02Z", row=3)
    killed_job(out, 3, [latched(2), sent])
    got = status.collect(out)
    assert got.in_fusebill == {"latched": 1, "restored": 0, "unknown": 1}
    assert nonzero(got.counts) == {"success": 1, "writing": 1, "pending": 1}
    assert got.left_rows == 2


def test_a_command_holding_the_job_is_running_not_killed(tmp_path: Path) -> None:
    out = tmp_path / "job"
    run_id = killed_job(out, 2, [], pid=os.getpid(), host=history.host())
    with history.lock(out):  # as that command holds it
        got = status.collect(out)
        shown = as_text(out)
    assert got.killed == [] and run_id == got.runs[0].folder
    assert got.running == {
        "kind": "run",
        "pid": os.getpid(),
        "host": history.host(),
        "user": "ops",
        "since": "2026-03-01T11:00:00Z",
    }
    assert got.left_rows == 2
    assert (
        f"A command is running on this job now: run (pid {os.getpid()} on {history.host()}, "
        "ops, since 2026-03-01T11:00:00Z)" in shown
    )
    assert "never recorded its end" not in shown


def test_a_killed_command_is_not_the_one_holding_the_job_now(tmp_path: Path) -> None:
    """A command killed earlier (pid 4242), and another that holds the job but has not
    begun its line yet: the killed one is said, the holder is what its lock says."""
    out = tmp_path / "job"
    run_id = killed_job(out, 2, [])
    with history.lock(out):
        got = status.collect(out)
    assert got.killed == [run_id]
    assert got.running is not None
    assert set(got.running) == {"kind", "pid", "host", "user", "since"}
    assert (got.running["pid"], got.running["host"]) == (os.getpid(), history.host())
    assert str(got.running["since"]).startswith("20")


def test_a_dry_run_after_a_run_leaves_the_runs_sheet_as_the_newest_input(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    """``left_rows`` is of the sheet of the latest ``run`` or ``plan``: a dry run of another
    file (checking a fix before feeding it back) does not make the rest of the job vanish."""
    out = first_run(tmp_path)
    other = write(tmp_path / "check.csv", "fusebillId,geotabId\n7,H\ny,I\nz,J\n")
    assert command(out, RunKind.DRY_RUN, other).exit_code == 1
    got = status.collect(out)
    assert got.left_rows == 1
    assert nonzero(got.counts) == {"success": 3, "failed": 1, "not_found": 1, "invalid": 1}


def test_a_job_with_only_a_plan_counts_the_plan(tmp_path: Path, fusebill: FakeFusebill) -> None:
    out = tmp_path / "job"
    source = write(tmp_path / "in.csv", "fusebillId,geotabId\n1,A\n4,D\n3,C\n")
    assert command(out, RunKind.PLAN, source).exit_code == 1  # 3 is not found
    got = status.collect(out)
    assert nonzero(got.counts) == {"valid": 2, "not_found": 1}
    assert got.in_fusebill == {"latched": 0, "restored": 0, "unknown": 0}
    assert got.left_rows == 2
    assert fusebill.count("latch") == 0


def test_runs_and_requests_per_day_come_from_the_ledger(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    out = tmp_path / "job"
    source = write(tmp_path / "in.csv", "fusebillId,geotabId\n1,A\n5,F\n6,G\n")
    stopped = command(out, RunKind.RUN, source, read_batch=1, max_requests=3)
    assert stopped.exit_code == 3
    # Read 1, latched 1, read 5: the write to 5 never left, so it is neither writing nor
    # unknown; 5 and 6 are left.
    between = status.collect(out)
    assert nonzero(between.counts) == {"success": 1, "pending": 2}
    assert between.in_fusebill == {"latched": 1, "restored": 0, "unknown": 0}
    assert between.left_rows == 2 and fusebill.count("latch") == 1
    done = command(out, RunKind.RUN, source, read_batch=1)
    got = status.collect(out)
    assert [(r.kind, r.exit_code, r.stop_reason) for r in got.runs] == [
        ("run", 3, "max_requests"),
        ("run", 0, None),
    ]
    assert [r.requests for r in got.runs] == [3, done.summary.requests]
    assert sum(got.requests_by_day.values()) == 3 + done.summary.requests
    assert (got.runs[0].input, got.runs[0].folder) == ("in.csv", stopped.paths.summary.parent.name)
    shown = as_text(out)
    assert "Runs (2):" in shown and "exit 3 (max_requests)" in shown


def pending_job(
    tmp_path: Path, rows: int, *, without: tuple[str, ...] = (), **summary: Any
) -> Path:
    """A --no-read run at --rate 10 that was stopped with ``rows`` rows unreached, on an
    account of 50 requests a minute and 5,000 a day (its summary.json says so; ``summary``
    says otherwise, ``without`` names keys an older version's summary.json lacks)."""
    out = tmp_path / "job"
    run_id = killed_job(out, rows, [])
    folder = out / RUNS / run_id
    folder.mkdir(parents=True)
    fields: dict[str, Any] = {
        "input": "/data/in.csv",
        "dry_run": False,
        "rows": rows,
        "counts": {Status.PENDING: rows},
        "requests": 0,
        "started_at": "2026-03-01T11:00:00Z",
        "finished_at": "2026-03-01T11:00:01Z",
        "exit_code": 3,
        "kind": RunKind.RUN,
        "reads": 0,
        "writes": 0,
        "changes": {},
        "stop_reason": StopReason.MAX_REQUESTS,
        "user": "ops",
        "host": "desk",
        "input_sha256": "9" * 64,
        "version": "test",
        "rate": 10.0,
        "read_first": False,
        "account_limits": {"minute": 50, "day": 5000},
    }
    data = asdict(Summary(**{**fields, **summary}))
    for key in without:
        del data[key]
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    return out


def test_the_estimate_uses_the_accounts_daily_limit_in_days(tmp_path: Path) -> None:
    got = status.collect(pending_job(tmp_path, 12_000))
    assert got.left_rows == 12_000
    assert got.left_requests == 12_000  # --no-read: one request a row
    assert "days" in got.estimate and "5,000 a day" in got.estimate


@pytest.mark.parametrize(
    ("reserve", "words"),
    [
        ("10%", "about 2.0 days at this account's limits (50 a minute, 5,000 a day less 500"),
        ("0", "about 1.1 days at this account's limits (50 a minute, 5,000 a day)"),
    ],
)
def test_the_estimate_keeps_the_runs_quota_reserve(
    tmp_path: Path, reserve: str, words: str
) -> None:
    got = status.collect(pending_job(tmp_path, 10_000, quota_reserve=reserve))
    # 10,000 requests: with 4,500 a day for this tool the last 1,000 go out on the third
    # day; with all 5,000, the last 5,000 on the second (100 min at 50 a minute).
    assert got.estimate.startswith(words), got.estimate


def test_not_a_job_is_an_exit_2_error(tmp_path: Path) -> None:
    with pytest.raises(NotAJob) as caught:
        status.collect(tmp_path)
    assert caught.value.exit_code == 2
    assert "not a batch-latch job folder" in str(caught.value)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p: p.write_bytes(b"not a database at all, just text"), "is not a database"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200), "damaged"),
    ],
)
def test_a_damaged_job_db_is_one_line_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], object],
    words: str,
) -> None:
    out = tmp_path / "job"
    killed_job(out, 2, [latched(2)])
    ledger = out / "job.db"
    for extra in out.glob("job.db-*"):  # what SQLite keeps beside it (WAL, shared memory)
        extra.unlink()
    damage(ledger)
    before = ledger.read_bytes()
    assert cli.main(["status", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and str(ledger) in captured.err
    assert words in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
    assert ledger.read_bytes() == before  # left as it is


def test_after_a_stopped_fresh_run_the_rows_it_did_not_reach_are_left(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    """``--fresh`` makes the re-run rules forget what came before it: rows the fresh run did
    not reach are read again by a re-run, so they are left, whatever earlier runs did."""
    out = tmp_path / "job"
    source = write(tmp_path / "in.csv", "fusebillId,geotabId\n1,A\n5,F\n6,G\n")
    assert command(out, RunKind.RUN, source).exit_code == 0
    assert status.collect(out).left_rows == 0
    fresh = command(out, RunKind.RUN, source, fresh=True, read_batch=1, max_requests=1)
    assert fresh.exit_code == 3
    assert nonzero(fresh.summary.counts) == {"success": 1, "pending": 2}
    assert status.collect(out).left_rows == 2


def test_a_v3_job_is_not_taken_in_by_status_while_a_command_takes_it_in(
    tmp_path: Path,
) -> None:
    """The first v4 command on a v3 job takes it into job.db, under the job's lock, through
    a file beside it; a status meanwhile says the job is busy and leaves that file alone
    (it would have deleted it and made a job.db of its own). Once free, status takes it in."""
    out = tmp_path / "job"
    out.mkdir()
    (out / "checkpoint.csv").write_text(
        f"#batch-latch-checkpoint,3,{URL}\n1,A,success,200,latched,,new,,2026-01-01T00:00:00Z\n",
        encoding="utf-8",
    )
    importing = out / ".job.db.import"
    with history.lock(out):  # the command taking it in
        importing.write_bytes(b"half made")
        with pytest.raises(JobBusy) as caught:
            status.collect(out)
        assert f"pid {os.getpid()}" in str(caught.value)
        assert importing.read_bytes() == b"half made" and not (out / "job.db").exists()
    importing.unlink()
    got = status.collect(out)
    assert (out / "job.db").is_file()
    assert got.in_fusebill == {"latched": 1, "restored": 0, "unknown": 0}
    assert nonzero(got.counts) == {"success": 1}


def test_a_write_whose_answer_was_lost_stays_unknown_until_a_read_settles_it(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    """The latch of customer 1 landed but its answer timed out, and so did the read-back:
    the row ends failed, yet the write may have landed, so status says so (writing, an
    unknown outcome) until the next run reads it and counts the latch as this job's."""
    fusebill.script("customer", 1, customer_object(1, None), timeout())
    fusebill.script("latch", 1, Landed(timeout()))
    out = tmp_path / "job"
    source = write(tmp_path / "in.csv", "fusebillId,geotabId\n1,A\n")
    first = command(out, RunKind.RUN, source, read_batch=1)
    assert nonzero(first.summary.counts) == {"failed": 1}
    assert fusebill.held(1) == "A"
    got = status.collect(out)
    assert nonzero(got.counts) == {"writing": 1}
    assert got.in_fusebill == {"latched": 0, "restored": 0, "unknown": 1}
    assert got.left_rows == 1
    assert command(out, RunKind.RUN, source, read_batch=1).exit_code == 0
    assert fusebill.count("latch") == 1  # the read found it latched: not written again
    got = status.collect(out)
    assert nonzero(got.counts) == {"success": 1}
    assert got.in_fusebill == {"latched": 1, "restored": 0, "unknown": 0}
    assert got.left_rows == 0


def test_undo_puts_back_a_write_whose_answer_was_lost_and_status_counts_it_undone(
    tmp_path: Path, fusebill: FakeFusebill
) -> None:
    fusebill.script("customer", 1, customer_object(1, None), timeout())
    fusebill.script("latch", 1, Landed(timeout()))
    out = tmp_path / "job"
    source = write(tmp_path / "in.csv", "fusebillId,geotabId\n1,A\n")
    assert command(out, RunKind.RUN, source, read_batch=1).exit_code == 1
    assert fusebill.held(1) == "A"
    undone = command(out, RunKind.UNDO, read_batch=1)
    assert undone.exit_code == 0 and fusebill.held(1) is None
    got = status.collect(out)
    assert got.in_fusebill == {"latched": 0, "restored": 1, "unknown": 0}
    assert nonzero(got.counts) == {"undone": 1}
    assert got.left_rows == 1
