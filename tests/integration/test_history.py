"""v2 run history: a folder per command, the latest copied to OUT/, inputs never overwritten,
one command at a time, results.xlsx, and the key in no file."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.doubles import wait_for
from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    StatusCli,
    UndoCli,
    assert_key_nowhere,
    cli_command,
    cli_env,
    known_rows,
    read_csv,
    write_csv,
)

SUMMARY_KEYS = {
    "input",
    "dry_run",
    "rows",
    "counts",
    "requests",
    "started_at",
    "finished_at",
    "exit_code",
    "kind",
    "reads",
    "writes",
    "changes",
    "stop_reason",
    "user",
    "host",
    "input_sha256",
    "version",
}


@pytest.mark.slow
def test_every_command_keeps_its_own_run_folder_and_the_latest_is_in_out(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    plan_cli: RunCli,
) -> None:
    sandbox = sandbox_factory()
    rows = [(1_000_001, "0909909"), (1_000_002, "G2"), (55, "G3")]
    source = write_csv(tmp_path / "in.csv", rows)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    dry = run_cli(source, sandbox.base_url, "--dry-run", key=None)
    plan = plan_cli(source, sandbox.base_url, *FAST)
    run = run_cli(source, sandbox.base_url, *FAST)

    assert [dry.returncode, plan.returncode, run.returncode] == [0, 1, 1]
    folders = [dry.folder(), plan.folder(), run.folder()]
    assert sorted(folders) == sorted(run.run_folders())
    assert [f.name.split("Z-", 1)[1] for f in folders] == ["dry-run", "plan", "run"]
    for folder, kind in zip(folders, ["dry-run", "plan", "run"]):
        for name in ("results.csv", "failed.csv", "summary.json", "results.xlsx"):
            assert (folder / name).is_file(), folder / name
        assert (folder / "input-in.csv").read_bytes() == source.read_bytes()
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        assert set(summary) >= SUMMARY_KEYS, SUMMARY_KEYS - set(summary)
        assert summary["kind"] == kind
        assert summary["input_sha256"] == digest
        assert summary["user"] and summary["host"] and summary["version"]
        assert summary["stop_reason"] is None
    last = json.loads((folders[-1] / "summary.json").read_text(encoding="utf-8"))
    # One list read (plus one customer it left out, read alone), then the two writes.
    assert (last["reads"], last["writes"], last["requests"]) == (2, 2, 4)
    assert last["changes"]["new"] == 2
    # The latest command's reports are also in OUT/ itself.
    for name in ("results.csv", "failed.csv", "summary.json"):
        assert (run.out / name).read_bytes() == (folders[-1] / name).read_bytes(), name
    # The plan's report is still there, untouched by the run after it.
    plan_rows = read_csv(folders[1] / "results.csv")
    assert [r["status"] for r in plan_rows] == ["valid", "valid", "not_found"]

    # results.xlsx reads back with ids as text.
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.load_workbook(run.out / "results.xlsx")
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["row", "fusebillId", "geotabId", "status"]
    values = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
    assert [v[1] for v in values] == ["1000001", "1000002", "55"]
    assert values[0][2] == "0909909"
    assert [v[3] for v in values] == ["success", "success", "not_found"]
    assert "Summary" in book.sheetnames


@pytest.mark.slow
def test_a_fed_back_failed_csv_is_never_overwritten_and_keeps_the_sheet_row_numbers(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = tmp_path / "sheet.csv"
    source.write_text(
        "fusebillId,geotabId,Notes\n1000001,A,n1\n1O00002,B,n2\n1000003,C,n3\nx9,D,n4\n",
        encoding="utf-8",
    )
    first = run_cli(source, sandbox.base_url, *FAST)
    assert first.returncode == 1
    failed = first.out / "failed.csv"
    assert [r["row"] for r in read_csv(failed)] == ["3", "5"]

    # Ops fix the two ids in OUT/failed.csv and save it.
    text = failed.read_text(encoding="utf-8-sig")
    fixed = text.replace("1O00002", "1000002").replace("x9", "1000009")
    failed.write_text(fixed, encoding="utf-8-sig")
    saved = failed.read_bytes()

    dry = run_cli(failed, sandbox.base_url, "--dry-run", key=None)
    assert dry.returncode == 0, dry.stderr
    assert failed.read_bytes() == saved
    assert [r["row"] for r in dry.results()] == ["3", "5"]  # the sheet's rows
    dry_folder = dry.folder()
    assert (dry_folder / "failed.csv").is_file()
    note = dry.stderr_lines(str(failed))
    assert note and str(dry_folder) in note[0], dry.stderr

    live = run_cli(failed, sandbox.base_url, *FAST)
    assert live.returncode == 0, live.stderr
    assert failed.read_bytes() == saved
    assert [r["row"] for r in live.results()] == ["3", "5"]
    assert {r["status"] for r in live.results()} == {"success"}
    assert sandbox.geotab_id_of(1_000_009) == "D"
    assert live.stderr_lines(str(live.folder())), live.stderr

    # A second round trip: the run folder's report fed back again; no input_input_ columns.
    again_source = dry_folder / "results.csv"
    again = run_cli(again_source, sandbox.base_url, "--dry-run", key=None)
    assert again.returncode == 0, again.stderr
    columns = list(again.results()[0])
    assert not [c for c in columns if c.startswith("input_input_")], columns
    assert [r["row"] for r in again.results()] == ["3", "5"]
    assert [r["Notes"] for r in again.results()] == ["n2", "n4"]

    # v3: the hand-edited failed.csv was fed back (its copy is in those run folders), so a
    # later run of the main sheet refreshes OUT/ again: the fix loop never freezes.
    main = run_cli(source, sandbox.base_url, *FAST)
    assert main.returncode == 1, main.stderr  # the sheet itself still has the two typos
    assert failed.read_bytes() == (main.folder() / "failed.csv").read_bytes() != saved
    assert not main.stderr_lines("was changed since"), main.stderr


@pytest.mark.slow
def test_a_second_command_on_a_busy_job_exits_2(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(latency_ms=200)
    source = write_csv(tmp_path / "in.csv", known_rows(30))
    out = tmp_path / "out"
    slow = subprocess.Popen(
        cli_command("run", source, "--out", out, "--no-progress", "--rate", "5", "--workers", "1"),
        env=cli_env(sandbox.base_url),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(sandbox.requests_log()) >= 1, what="the slow run's first request")

        second = run_cli(source, sandbox.base_url, "--dry-run", key=None)

        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "busy" in lines[0], second.stderr
        slow.send_signal(signal.SIGINT)
        _, stderr = slow.communicate(timeout=30)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    assert slow.returncode == 130, stderr
    # The lock went with the process: the next command works.
    after = run_cli(source, sandbox.base_url, "--dry-run", key=None)
    assert after.returncode == 0, after.stderr


@pytest.mark.slow
def test_the_key_is_in_no_file_of_the_job_and_in_no_output(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    plan_cli: RunCli,
    undo_cli: UndoCli,
    status_cli: StatusCli,
) -> None:
    sandbox = sandbox_factory(preset={1_000_002: "OLD"}, force_status={1_000_003: 400})
    rows = [(1_000_001, "A"), (1_000_002, "B"), (1_000_003, "C"), (55, "D"), ("bad", "E")]
    source = write_csv(tmp_path / "in.csv", rows)
    runs = [
        plan_cli(source, sandbox.base_url, *FAST),
        run_cli(source, sandbox.base_url, "--allow-relatch", *FAST),
        run_cli(source, sandbox.base_url, "--max-requests", "1", "--retry-failed", *FAST),
        undo_cli(sandbox.base_url, "--dry-run"),
        undo_cli(sandbox.base_url, *FAST),
        status_cli(tmp_path / "out"),
        status_cli(tmp_path / "out", "--json"),
    ]
    assert [r.returncode for r in runs] == [1, 1, 3, 0, 0, 0, 0], [r.stderr for r in runs]
    assert_key_nowhere(tmp_path / "out", *(r.stdout + r.stderr for r in runs))
