"""Whatever fails around a real CLI run, the reports tell the truth: a closed stdout or
stderr, a full disk, an input deleted or changed mid-run, a damaged OUT/ record."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_latch.jobfolder import history
from tests.doubles import wait_for
from tests.integration.conftest import (
    FAST,
    Run,
    RunCli,
    SandboxFactory,
    cli_command,
    cli_env,
    known_rows,
    latch_requests,
    write_csv,
)


def run_with(
    tmp_path: Path, base_url: str, rows: int, *options: object, close: str = "", shell: str = ""
) -> Run:
    """``run`` with stdout or stderr (``close``) a pipe whose reader closed it at once, or
    with a shell redirection (``shell``, e.g. ``2>&-``: the descriptor closed)."""
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(rows))
    out = tmp_path / "out"
    words = cli_command("run", sheet, "--out", out, "--no-progress", *FAST, *options)
    if shell:
        words = ["sh", "-c", f'exec "$@" {shell}', "sh", *words]
    proc = subprocess.Popen(
        words,
        env=cli_env(base_url),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    dead = {"stdout": proc.stdout, "stderr": proc.stderr}.get(close)
    if dead is not None:
        dead.close()  # the reader is gone before the first line: every write gets EPIPE
    stdout, stderr = proc.communicate(timeout=120)
    return Run(proc.returncode, (stdout or b"").decode(), (stderr or b"").decode(), out)


def statuses(run: Run) -> list[str]:
    return [row["status"] for row in run.results()]


@pytest.mark.parametrize("shell", ["", "1>&-"], ids=["pipe-closed", "fd-closed"])
def test_stdout_gone_changes_no_outcome_and_no_exit_code(
    tmp_path: Path, sandbox_factory: SandboxFactory, shell: str
) -> None:
    sandbox = sandbox_factory()
    run = run_with(tmp_path, sandbox.base_url, 6, close="" if shell else "stdout", shell=shell)
    assert run.returncode == 0, run.stderr
    assert "Exception ignored" not in run.stderr and "internal error" not in run.stderr
    assert statuses(run) == ["success"] * 6
    assert run.summary()["exit_code"] == 0


@pytest.mark.parametrize("shell", ["", "2>&-"], ids=["pipe-closed", "fd-closed"])
def test_stderr_gone_with_an_early_stop_still_writes_the_reports(
    tmp_path: Path, sandbox_factory: SandboxFactory, shell: str
) -> None:
    sandbox = sandbox_factory()
    options = ("--max-requests", 4)
    run = run_with(
        tmp_path, sandbox.base_url, 6, *options, close="" if shell else "stderr", shell=shell
    )
    assert run.returncode == 3, run.stdout
    assert "pending" in statuses(run)
    assert run.summary()["exit_code"] == 3
    assert "--max-requests" in run.stdout  # the summary on stdout still says why


def test_stderr_gone_while_the_limits_estimate_prints_fails_no_row(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(profile="sandbox")  # answers carry the account's limits
    run = run_with(tmp_path, sandbox.base_url, 6, close="stderr")
    assert run.returncode == 0, run.stdout
    assert statuses(run) == ["success"] * 6


# --- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs of its own (Linux, root); skipped where mounting is not allowed. Room,
    once freed, for a 400-row job: job.db's WAL grows to about 4 MiB before SQLite
    checkpoints it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("a small tmpfs for a full disk needs root (mount -t tmpfs)")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a small tmpfs here: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


def fill(disk: Path, leave_pages: int) -> Path:
    """Fill ``disk`` but for ``leave_pages`` pages of 4 KiB; the filler file, to free it."""
    spare = disk / "spare"
    spare.write_bytes(b"\0" * 4096 * leave_pages)
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    spare.unlink()
    return filler


def one_line_disk_full(run: Run) -> str:
    errors = [line for line in run.stderr.splitlines() if line.startswith("batch-latch: error:")]
    assert len(errors) == 1, run.stderr
    assert "free some space and run again" in errors[0], errors[0]
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    return errors[0]


def test_a_full_disk_at_the_start_is_one_line_and_exit_2(
    tmp_path: Path, small_disk: Path, run_cli: RunCli, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    fill(small_disk, 0)
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(3))
    run = run_cli(sheet, sandbox.base_url, *FAST, out=small_disk / "out")
    assert run.returncode == 2, run.stderr
    one_line_disk_full(run)
    assert sandbox.requests_log() == []


@pytest.mark.slow
def test_a_disk_full_mid_run_is_exit_3_and_loses_nothing_recorded(
    tmp_path: Path, small_disk: Path, run_cli: RunCli, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    # The lock's pid line, job.db and its WAL (a few KiB per commit): about a dozen latches.
    filler = fill(small_disk, 120)
    rows = 400
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(rows))
    out = small_disk / "out"
    run = run_cli(sheet, sandbox.base_url, "--rate", 400, "--workers", 4, out=out)
    assert run.returncode == 3, run.stderr
    assert "job.db" in one_line_disk_full(run)
    first_latches = len(latch_requests(sandbox))
    assert 0 < first_latches < rows

    filler.unlink()  # space freed: the same command goes on where it stopped
    again = run_cli(sheet, sandbox.base_url, "--rate", 400, "--workers", 4, out=out)
    assert again.returncode == 0, again.stderr
    assert statuses(again) == ["success"] * rows
    # Read first: a latch that landed unrecorded is found in place, never written twice.
    assert len(latch_requests(sandbox)) == rows


# --- the input deleted or changed mid-run, and a damaged OUT/ --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("change", ["deleted", "truncated"])
def test_an_input_deleted_or_changed_mid_run_still_gets_its_reports(
    tmp_path: Path, sandbox_factory: SandboxFactory, change: str
) -> None:
    sandbox = sandbox_factory(latency_ms=100)
    rows = 30
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(rows))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        cli_command("run", sheet, "--out", out, "--no-progress", *FAST),
        env=cli_env(sandbox.base_url),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(sandbox.requests_log()) >= 4, deadline=30, what="requests")
        if change == "deleted":
            sheet.unlink()
        else:
            sheet.write_text("fusebillId,geotabId\n", encoding="utf-8")
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    run = Run(proc.returncode, stdout, stderr, out)
    assert run.returncode == 0, run.stderr
    assert statuses(run) == ["success"] * rows
    folder = run.folder()
    assert not (folder / "input-sheet.csv").exists()
    note = (folder / history.NO_INPUT_COPY).read_text(encoding="utf-8")
    assert run.summary()["input_sha256"] in note
    assert len(run.stderr_lines("holds no copy of the input")) == 1, run.stderr


def test_an_emptied_job_db_is_refused_in_one_line(
    tmp_path: Path, run_cli: RunCli, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(3))
    assert run_cli(sheet, sandbox.base_url, *FAST).returncode == 0
    ledger = tmp_path / "out" / "job.db"
    for suffix in ("-wal", "-shm"):
        ledger.with_name(f"job.db{suffix}").unlink(missing_ok=True)
    ledger.write_bytes(b"")
    sent = len(sandbox.requests_log())
    run = run_cli(sheet, sandbox.base_url, *FAST)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert str(ledger) in run.stderr and "empty (0 bytes)" in run.stderr, run.stderr
    assert len(sandbox.requests_log()) == sent
    assert ledger.read_bytes() == b""


def test_a_damaged_published_record_lets_out_be_refreshed(
    tmp_path: Path, run_cli: RunCli, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(3))
    first = run_cli(sheet, sandbox.base_url, *FAST, "--max-requests", 2)
    assert first.returncode == 3, first.stderr
    (tmp_path / "out" / history.PUBLISHED).write_bytes(b'{"results.csv": "1')  # torn
    run = run_cli(sheet, sandbox.base_url, *FAST)
    assert run.returncode == 0, run.stderr
    assert run.summary()["exit_code"] == 0  # OUT/ holds this run's reports
    assert statuses(run) == ["success"] * 3
    kept = sorted(p.name for p in (tmp_path / "out").glob("*.kept-*"))
    assert {name.split(".kept-")[0] for name in kept} == {"failed", "results", "summary"}
    assert len(run.stderr_lines("was damaged")) == len(kept), run.stderr
