"""v2 ``status OUT``: the job at a glance from its files alone (no key, no requests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import (
    RunCli,
    SandboxFactory,
    StatusCli,
    known_rows,
    write_csv,
)


@pytest.mark.slow
def test_status_shows_counts_runs_requests_per_day_and_what_is_left(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [*known_rows(6), (55, "NOBODY"), ("bad", "X")])
    first = run_cli(source, sandbox.base_url, "--max-requests", "4", "--workers", "1")
    assert first.returncode == 3
    second = run_cli(source, sandbox.base_url, "--max-requests", "2", "--workers", "1")
    assert second.returncode == 3
    sent = len(sandbox.requests_log())
    assert sent == 6

    text = status_cli(first.out)
    as_json = status_cli(first.out, "--json")

    assert len(sandbox.requests_log()) == sent  # status sends nothing
    assert text.returncode == 0, text.stderr
    assert as_json.returncode == 0, as_json.stderr
    job = json.loads(as_json.stdout)
    counts = {k: v for k, v in job["counts"].items() if v}
    # A list read of the 7 valid rows and 3 writes, then a list read of the 4 left and 1
    # write: 4 rows latched over two runs, 3 still to send (55 included), one invalid.
    assert counts == {"success": 4, "pending": 3, "invalid": 1}, job
    assert job["rows"] == 7  # v4: the job's pairs (the invalid row is counted apart)
    assert [r["kind"] for r in job["runs"]] == ["run", "run"]
    assert [r["requests"] for r in job["runs"]] == [4, 2]
    assert [r["exit_code"] for r in job["runs"]] == [3, 3]
    assert sum(job["requests_by_day"].values()) == 6
    assert job["left_rows"] == 3
    assert job["left_requests"] == 4  # the reads 100 a request (--read-batch), a write each
    assert job["estimate"]
    # The same facts in words.
    assert "success" in text.stdout and "pending" in text.stdout
    assert "Runs (2)" in text.stdout
    day = next(iter(job["requests_by_day"]))
    assert day in text.stdout
    assert "Left: 3 rows" in text.stdout


def test_status_of_a_folder_that_is_not_a_job_is_one_line_and_exit_2(
    tmp_path: Path, status_cli: StatusCli
) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()

    status = status_cli(folder)

    assert status.returncode == 2
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0], status.stderr
    assert status.stdout == ""


def test_status_comes_from_job_db_and_a_damaged_one_is_one_line_and_exit_2(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(2))
    run = run_cli(source, sandbox.base_url)
    assert run.returncode == 0, run.stderr
    # v4: the ledger owns the job's truth; a damaged report is not the job's memory.
    (run.folder() / "summary.json").write_text('{"kind": "run", "rows": ', encoding="utf-8")
    shown = status_cli(run.out, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["counts"]["success"] == 2

    ledger = run.out / "job.db"
    for suffix in ("-wal", "-shm"):
        (run.out / f"job.db{suffix}").unlink(missing_ok=True)
    damaged = b"this is not a database, whatever its name says" * 100
    ledger.write_bytes(damaged)

    status = status_cli(run.out)

    assert status.returncode == 2
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1 and str(ledger) in lines[0], status.stderr
    assert "Traceback" not in status.stderr and status.stdout == ""
    assert ledger.read_bytes() == damaged  # left as it is
