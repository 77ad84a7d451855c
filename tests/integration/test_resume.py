"""Re-runs, stops and crashes: a re-run of the same command picks up where things stood."""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.doubles import wait_for
from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    UndoCli,
    cli_command,
    cli_env,
    invoke,
    job_db,
    killed_when,
    known_rows,
    latch_requests,
    read_csv,
    read_requests,
    summary_counts,
    write_csv,
)


@pytest.mark.slow
def test_rerun_sends_only_what_is_not_done(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(force_status={1_000_002: 400})
    rows = [(1_000_001, "A"), (1_000_002, "B"), (55, "C"), (1_000_004, "D")]
    source = write_csv(tmp_path / "in.csv", rows)

    first = run_cli(source, sandbox.base_url, *FAST)
    assert first.returncode == 1
    assert [r["status"] for r in first.results()] == ["success", "failed", "not_found", "success"]

    second = run_cli(source, sandbox.base_url, *FAST)

    assert second.returncode == 1
    results = second.by_row()
    assert results[2]["status"] == "success" and "latched earlier" in results[2]["message"]
    assert results[2]["attempts"] == "0"
    assert results[4]["status"] == "not_found" and "earlier run" in results[4]["message"]
    # v2: Fusebill's 400 is its final word: not sent again, its message kept.
    assert results[3]["status"] == "failed" and results[3]["attempts"] == "0"
    assert "refused in an earlier run" in results[3]["message"]
    assert "not eligible" in results[3]["message"]
    assert "--retry-failed" in results[3]["message"]
    assert second.summary()["requests"] == 0
    assert Counter(r.fusebill_id for r in latch_requests(sandbox)) == {
        1_000_001: 1,
        1_000_002: 1,
        1_000_004: 1,
    }

    third = run_cli(source, sandbox.base_url, "--retry-failed", *FAST)

    assert third.by_row()[3]["status"] == "failed"
    assert third.by_row()[3]["attempts"] == "1"
    assert len(latch_requests(sandbox, 1_000_002)) == 2
    assert third.summary()["requests"] == 2  # its read and its latch, nothing else
    assert third.by_row()[4]["status"] == "not_found"
    # The first run's list read left 55 out, so it was read alone (404); nothing since.
    assert [r.is_list for r in read_requests(sandbox, 55)] == [True, False]

    fourth = run_cli(source, sandbox.base_url, "--retry-not-found", *FAST)

    assert fourth.by_row()[4]["status"] == "not_found"
    assert "earlier run" not in fourth.by_row()[4]["message"]
    # Read again the same way: a list read that leaves it out, then its own read's 404.
    assert [r.is_list for r in read_requests(sandbox, 55)] == [True, False, True, False]
    assert latch_requests(sandbox, 55) == []  # the read said 404: nothing written
    assert fourth.summary()["requests"] == 2


@pytest.mark.slow
def test_rerun_rules_hold_when_the_sheet_was_edited(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    first_rows = known_rows(6)
    run_cli(write_csv(tmp_path / "in.csv", first_rows), sandbox.base_url, *FAST)

    # Ops reorder the sheet, drop a row, add a row, change one geotabId, add a note column.
    edited = [(fid, gid, "note") for fid, gid in reversed(first_rows[1:])]
    changed_fid, old_gid = edited[0][0], edited[0][1]
    edited[0] = (changed_fid, "CHANGED", "note")
    edited.append((1_000_100, "NEW", "note"))
    source = write_csv(tmp_path / "in.csv", edited, header=("Fusebill ID", "Geotab ID", "Notes"))

    second = run_cli(source, sandbox.base_url, *FAST)

    # The changed pair is a row like any other: read, found holding the job's old value,
    # refused without --allow-relatch. The new row is latched. Nothing else is sent.
    assert second.returncode == 1, second.stderr
    assert second.summary()["requests"] == 2  # one list read of the two, one write
    refused = second.by_fid()[changed_fid]
    assert (refused["status"], refused["error_key"]) == ("failed", "relatch_refused")
    assert old_gid in refused["message"]
    assert sandbox.geotab_id_of(changed_fid) == old_gid
    assert second.by_fid()[1_000_100]["change"] == "new"
    assert all(r["Notes"] == "note" for r in second.results())
    assert len(second.results()) == 6

    third = run_cli(source, sandbox.base_url, "--allow-relatch", *FAST)

    assert third.returncode == 0, third.stderr
    assert third.summary()["requests"] == 2  # the changed pair's read and write only
    sent_again = latch_requests(sandbox)[6:]
    assert sorted((r.fusebill_id, r.geotab_id) for r in sent_again) == sorted(
        [(1_000_100, "NEW"), (changed_fid, "CHANGED")]
    )
    row = third.by_fid()[changed_fid]
    assert (row["status"], row["change"]) == ("success", "relatch")
    assert old_gid in row["message"]  # "replaced 'G0000x'"
    # What the customer held before this job first changed it: nothing (run 1 was new).
    assert row["previous_geotabId"] == ""
    assert sandbox.geotab_id_of(changed_fid) == "CHANGED"


def test_max_requests_stops_cleanly_and_the_next_run_finishes(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(10))

    first = run_cli(source, sandbox.base_url, "--max-requests", "4", "--workers", "1")

    assert first.returncode == 3
    assert "--max-requests" in first.stderr
    # Reads count: 4 requests are one list read of the ten customers and three writes.
    assert Counter(r["status"] for r in first.results()) == {"success": 3, "pending": 7}
    assert first.summary()["requests"] == 4
    assert first.summary()["stop_reason"] == "max_requests"
    assert len(sandbox.requests_log()) == 4
    assert len(latch_requests(sandbox)) == 3

    second = run_cli(source, sandbox.base_url, "--max-requests", "100", *FAST)

    assert second.returncode == 0
    assert len(latch_requests(sandbox)) == 10
    # One list read each run; rows done before are not read again.
    assert [len(r.asked_ids) for r in read_requests(sandbox)] == [10, 7]
    assert {r["status"] for r in second.results()} == {"success"}


@pytest.mark.parametrize("stop", ["max_requests", "daily_quota"])
def test_a_row_not_reached_keeps_the_earlier_message_with_a_note(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, stop: str
) -> None:
    # Rows 2 and 3 are answered 409 (retryable, so sent again next run); the next run stops
    # (--max-requests, or the daily quota) after its list read, before either write: both
    # stay pending, but keep what Fusebill said.
    quota = {"day_limit": 4} if stop == "daily_quota" else {}
    sandbox = sandbox_factory(force_status={1_000_000: 409, 1_000_001: 409}, **quota)
    source = write_csv(tmp_path / "in.csv", [(1_000_000, "A"), (1_000_001, "B")])
    first = run_cli(source, sandbox.base_url, "--max-attempts", "1", "--workers", "1")
    assert [r["status"] for r in first.results()] == ["failed", "failed"]
    assert "locked by another operation" in first.by_row()[3]["message"]
    assert len(sandbox.requests_log()) == 3  # one list read, two writes

    limit = ("--max-requests", "1") if stop == "max_requests" else ()
    second = run_cli(source, sandbox.base_url, *limit, "--workers", "1")

    assert second.returncode == 3, second.stderr
    assert second.summary()["stop_reason"] == stop
    assert len(sandbox.requests_log()) == 4
    for row in second.by_row().values():
        assert row["status"] == "pending"
        assert "locked by another operation" in row["message"], row["message"]
        assert "earlier run" in row["message"]


def test_fresh_ignores_earlier_outcomes_and_the_ledger_keeps_them(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(3))
    run_cli(source, sandbox.base_url, *FAST)

    again = run_cli(source, sandbox.base_url, "--fresh", *FAST)

    assert again.returncode == 0
    # Every row is looked at again (read), found already latched: nothing written twice.
    assert len(read_requests(sandbox)) == 2  # one list read each run
    assert len(latch_requests(sandbox)) == 3
    for row in again.results():
        assert (row["status"], row["change"], row["attempts"]) == ("success", "unchanged", "0")
        assert "latched earlier" not in row["message"]
    # The ledger keeps the first run's outcomes (for undo and status --customer).
    first, _ = [r for (r,) in job_db(tmp_path / "out", "SELECT run_id FROM runs")]
    kept = job_db(
        tmp_path / "out",
        "SELECT fusebillId, status, change FROM events WHERE run_id = ? ORDER BY row",
        first,
    )
    assert kept == [(f, "success", "new") for f, _ in known_rows(3)]


def test_a_job_bound_to_another_api_is_refused(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    one, two = sandbox_factory(), sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(2))
    run_cli(source, one.base_url, *FAST)

    other = run_cli(source, two.base_url, *FAST)

    assert other.returncode == 2
    # v3: both URLs and another --out; never --fresh (that would set the job's memory aside).
    assert one.base_url in other.stderr and two.base_url in other.stderr
    assert "--out" in other.stderr and "--fresh" not in other.stderr
    assert "Traceback" not in other.stderr
    assert two.requests_log() == []


def test_ctrl_c_finishes_in_flight_requests_writes_reports_and_exits_130(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(latency_ms=300)
    source = write_csv(tmp_path / "in.csv", known_rows(40))
    out = tmp_path / "out"
    workers = 2
    proc = subprocess.Popen(
        cli_command(
            "run", source, "--out", out, "--no-progress", "--rate", "10", "--workers", workers
        ),
        env=cli_env(sandbox.base_url),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: len(latch_requests(sandbox)) >= 2, what="the first latches")
    proc.send_signal(signal.SIGINT)
    seen_at_signal = len(sandbox.requests_log())
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    # No new request after Ctrl-C: only those in flight finish.
    assert len(sandbox.requests_log()) - seen_at_signal <= workers
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 130
    assert summary["stop_reason"] == "interrupted"
    sent = len([r for r in latch_requests(sandbox) if r.status == 200])
    counts = summary["counts"]
    assert counts["success"] == sent  # every latch that was in flight finished and counts
    assert counts["pending"] == 40 - sent > 0
    # The run folder has its reports too.
    (folder,) = (out / "runs").iterdir()
    assert json.loads((folder / "summary.json").read_text())["exit_code"] == 130


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    """Kill -9 the CLI mid-run several times; re-run; every row ends success, latched once."""
    sandbox = sandbox_factory(latency_ms=40)  # in this process: only the CLI is killed
    base_url = sandbox.base_url
    rows = known_rows(80)
    source = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out"
    workers = 4
    words = ["run", source, "--out", out, "--no-progress", "--rate", 100, "--workers", workers]
    command = cli_command(*words)
    rng = random.Random(20261127)
    kills = 0
    for _ in range(4):
        before = len(latch_requests(sandbox))
        proc = subprocess.Popen(
            command,
            env=cli_env(base_url),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        target = before + rng.randint(3, 12)
        wait_for(
            lambda t=target, p=proc: len(latch_requests(sandbox)) >= t or p.poll() is not None,  # type: ignore[misc]
            what="traffic",
        )
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)

    final = invoke(words, cwd=tmp_path, out=out, base_url=base_url)  # nothing to kill now
    assert final.returncode == 0, final.stderr
    results = read_csv(out / "results.csv")
    assert [int(r["row"]) for r in results] == list(range(2, 2 + len(rows)))
    assert {r["status"] for r in results} == {"success"}
    assert {r["change"] for r in results} <= {"new", "unchanged"}
    sent = Counter(r.fusebill_id for r in latch_requests(sandbox))
    assert set(sent) == {fid for fid, _ in rows}
    assert kills >= 3
    # Read before write: a latch that landed unrecorded is found on resume, not re-sent.
    sent_twice = [fid for fid, n in sent.items() if n > 1]
    assert sent_twice == [], (kills, sent_twice)
    # And the contract's own bound, per run: a row done is not read again.
    assert summary_counts(json.loads((out / "summary.json").read_text())) == {"success": 80}


@pytest.mark.slow
def test_a_latch_killed_before_its_answer_is_the_jobs_change_and_undo_puts_it_back(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    """The write-ahead record: kill -9 between the latch's arrival (applied) and its answer
    (held back a minute: the first latch of each customer stalls); the next run counts it as
    this job's `new` latch; undo unlatches it."""
    fid = 1_000_001
    sandbox = sandbox_factory(stall_first_ms=60_000)
    source = write_csv(tmp_path / "in.csv", [(fid, "GT-A")])
    out = tmp_path / "out"
    killed_when(
        ["run", source, "--out", out, "--no-progress", "--timeout", 120],
        cwd=tmp_path,
        base_url=sandbox.base_url,
        when=lambda: sandbox.geotab_id_of(fid) == "GT-A",
        what="the latch",
    )
    assert len(latch_requests(sandbox, fid)) == 1

    again = run_cli(source, sandbox.base_url, *FAST)
    (row,) = again.results()
    assert (row["status"], row["change"], row["previous_geotabId"]) == ("success", "new", "")
    assert "answer was lost" in row["message"]
    assert len(latch_requests(sandbox, fid)) == 1  # found by its read, not written again

    undone = undo_cli(sandbox.base_url, *FAST)
    assert undone.returncode == 0, undone.stderr
    assert sandbox.geotab_id_of(fid) is None


@pytest.mark.slow
def test_undo_right_after_a_kill_puts_back_a_latch_whose_answer_was_lost(
    tmp_path: Path, sandbox_factory: SandboxFactory, undo_cli: UndoCli
) -> None:
    fid = 1_000_002
    # The relatch lands and its answer is held back a minute (the first latch of each
    # customer stalls); undo's own latch back is answered at once.
    sandbox = sandbox_factory(stall_first_ms=60_000, preset={fid: "OLD"})
    source = write_csv(tmp_path / "in.csv", [(fid, "NEW")])
    killed_when(
        ["run", source, "--out", tmp_path / "out", "--no-progress", "--allow-relatch",
         "--timeout", 120],
        cwd=tmp_path,
        base_url=sandbox.base_url,
        when=lambda: sandbox.geotab_id_of(fid) == "NEW",
        what="the latch",
    )  # fmt: skip

    undone = undo_cli(sandbox.base_url, *FAST)
    assert undone.returncode == 0, undone.stderr
    (row,) = undone.results()
    assert row["status"] == "success", row
    assert sandbox.geotab_id_of(fid) == "OLD"  # latched back to what it held before
