"""One command end to end through ``job.run`` without the network: dry run and undo dry run,
run folders, the published reports, the summary and the exit code."""

from __future__ import annotations

import io
import json
from pathlib import Path

from batch_latch.commands import job
from batch_latch.jobfolder.history import RUNS
from batch_latch.jobfolder.ledger import Ledger
from batch_latch.settings import Settings
from batch_latch.vocab import Change, ExitCode, RunKind
from tests.ledgers import Record, write_job

URL = "http://127.0.0.1:9/v1"


def sheet(tmp_path: Path, text: str = "fusebillId,geotabId,Notes\n1,A,n1\n2,B,n2\n") -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return path


def dry_run(source: Path, out: Path) -> tuple[job.JobResult, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    settings = Settings(out=out, input=source, kind=RunKind.DRY_RUN, dry_run=True, progress=False)
    return job.run(settings, stdout=stdout, stderr=stderr), stdout.getvalue(), stderr.getvalue()


def test_a_dry_run_writes_its_run_folder_and_publishes(tmp_path: Path) -> None:
    source = sheet(tmp_path)
    out = tmp_path / "out"
    result, stdout, _ = dry_run(source, out)
    assert result.exit_code is ExitCode.OK
    folders = list((out / RUNS).iterdir())
    assert len(folders) == 1 and folders[0].name.endswith("-dry-run")
    for name in ("results.csv", "failed.csv", "summary.json", "results.xlsx"):
        assert (folders[0] / name).is_file(), name
    # The ledger has the command, ended, and no event: a dry run adds none.
    ledger = Ledger.open(out, create=False)
    try:
        runs = ledger.query("SELECT run_id, kind, exit_code, ended_at IS NOT NULL FROM runs")
        assert runs == [(folders[0].name, "dry_run", 0, 1)]
        assert ledger.query("SELECT count(*) FROM events") == [(0,)]
    finally:
        ledger.close()
    assert (folders[0] / "input-in.csv").read_bytes() == source.read_bytes()
    assert (out / "results.csv").read_bytes() == (folders[0] / "results.csv").read_bytes()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["kind"] == "dry-run" and summary["dry_run"] is True
    assert summary["counts"]["valid"] == 2 and summary["requests"] == 0
    assert summary["exit_code"] == 0 and summary["stop_reason"] is None
    assert len(summary["input_sha256"]) == 64
    assert "Dry run of" in stdout and "2 rows" in stdout
    assert result.summary.rows == 2


def test_a_second_dry_run_gets_its_own_folder(tmp_path: Path) -> None:
    source = sheet(tmp_path)
    dry_run(source, tmp_path / "out")
    dry_run(source, tmp_path / "out")
    assert len(list((tmp_path / "out" / RUNS).iterdir())) == 2


def test_invalid_rows_make_exit_1(tmp_path: Path) -> None:
    result, stdout, _ = dry_run(
        sheet(tmp_path, "fusebillId,geotabId\n1,A\nx,B\n"), tmp_path / "out"
    )
    assert result.exit_code is ExitCode.ROW_PROBLEMS
    assert "invalid (not sent)" in stdout


def test_a_fed_back_failed_csv_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dry_run(sheet(tmp_path, "fusebillId,geotabId\n1,A\nx,B\n"), out)
    failed = out / "failed.csv"
    edited = failed.read_text(encoding="utf-8-sig").replace(",x,", ",2,")
    failed.write_text(edited, encoding="utf-8")
    _, _, stderr = dry_run(failed, out)
    assert failed.read_text(encoding="utf-8") == edited
    assert "input" in stderr and str(failed) in stderr


def test_a_header_below_title_lines_is_named_on_stderr(tmp_path: Path) -> None:
    source = sheet(tmp_path, "Customer list\n\nfusebillId,geotabId\n1,A\n")
    _, _, stderr = dry_run(source, tmp_path / "out")
    assert "Header found on row 3" in stderr


def test_an_undo_dry_run_reports_one_row_per_customer(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_job(
        out,
        URL,
        [
            Record(1, "A", "success", 200, "latched", "", "t", "new", ""),
            Record(2, "B", "success", 200, "latched", "", "t", "relatch", "OLD"),
        ],
    )
    stdout = io.StringIO()
    settings = Settings(out=out, kind=RunKind.UNDO, dry_run=True, base_url=URL)
    result = job.run(settings, stdout=stdout, stderr=io.StringIO())
    assert result.exit_code is ExitCode.OK
    assert result.summary.kind is RunKind.UNDO and result.summary.dry_run
    assert result.summary.rows == 2 and result.summary.changes[Change.UNDO] == 2
    assert "Undo dry run" in stdout.getvalue()
    assert (out / RUNS).is_dir() and any(p.name.endswith("-undo") for p in (out / RUNS).iterdir())
