"""A job that tells its own story truly: the fix loop, the runs table, stops and messages,
the terminal bar and the demo, through the CLI against the sandbox (first asked for in
issue #18; each test is named for the behaviour it pins)."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import termios
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batch_latch.jobfolder import history
from batch_latch.sandbox import Sandbox
from tests.doubles import wait_for
from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    StatusCli,
    UndoCli,
    holdings,
    invoke,
    job_db,
    known_rows,
    latch_requests,
    summary_counts,
    write_csv,
)
from tests.integration.test_signals_cli import Background

OTHER, NEW = 1_000_002, 1_000_003


def _summary_sheet_changes(path: Path) -> dict[str, int]:
    sheet = openpyxl.load_workbook(path)["Summary"]
    cells = [(r[0], r[1]) for r in sheet.iter_rows(values_only=True) if r and r[0]]
    at = next(i for i, (label, _) in enumerate(cells) if label == "change")
    return {str(k): int(v) for k, v in cells[at + 1 :] if isinstance(v, int | float)}


def test_a_refused_relatch_has_no_change_anywhere(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(preset={OTHER: "GT-OLD"})
    source = write_csv(tmp_path / "in.csv", [(OTHER, "GT-WANTED"), (NEW, "GT-NEW")])

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 1, run.stderr
    refused = run.by_fid()[OTHER]
    assert (refused["status"], refused["error_key"]) == ("failed", "relatch_refused")
    assert refused["change"] == ""  # nothing was replaced
    assert refused["previous_geotabId"] == "GT-OLD"  # what the customer holds
    assert latch_requests(sandbox, OTHER) == []
    changes = {k: v for k, v in run.summary()["changes"].items() if v}
    assert changes == {"new": 1}
    assert {k: v for k, v in _summary_sheet_changes(run.out / "results.xlsx").items() if v} == {
        "new": 1
    }
    line = next(x for x in run.stdout.splitlines() if "changes:" in x)
    assert "relatch" not in line and "1 new" in line
    failed = {int(r["fusebillId"]): r for r in run.failed()}
    assert failed[OTHER]["change"] == ""


def test_a_wrong_url_leaves_the_job_unbound_and_a_real_mismatch_names_both(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(3))
    wrong = sandbox.base_url.removesuffix("/v1")

    stopped = run_cli(source, wrong, *FAST)
    assert stopped.returncode == 3, stopped.stderr
    assert "FUSEBILL_BASE_URL" in stopped.stderr

    fixed = run_cli(source, sandbox.base_url, *FAST)  # the same command, the URL fixed
    assert fixed.returncode == 0, fixed.stderr
    assert summary_counts(fixed.summary()) == {"success": 3}

    other = sandbox_factory()
    refused = run_cli(source, other.base_url, *FAST)
    assert refused.returncode == 2
    line = refused.stderr.strip()
    assert sandbox.base_url in line and other.base_url in line, line
    assert "--out" in line and "--fresh" not in line
    assert latch_requests(other) == []


def test_fresh_keeps_the_set_aside_latches_for_undo(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    undo_cli: UndoCli,
    status_cli: StatusCli,
) -> None:
    sandbox = sandbox_factory()
    rows = known_rows(3)
    source = write_csv(tmp_path / "in.csv", rows)
    assert run_cli(source, sandbox.base_url, *FAST).returncode == 0
    more = write_csv(tmp_path / "more.csv", known_rows(2, start=1_000_010))
    fresh = run_cli(more, sandbox.base_url, *FAST, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    # The ledger still holds the first run's latches (v4: --fresh forgets them only for
    # the re-run rules).
    first, _ = [r for (r,) in job_db(fresh.out, "SELECT run_id FROM runs")]
    latched = job_db(
        fresh.out, "SELECT fusebillId FROM events WHERE run_id = ? AND change = 'new'", first
    )
    assert sorted(f for (f,) in latched) == [f for f, _ in rows]

    dry = undo_cli(sandbox.base_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert len(dry.results()) == 5

    undone = undo_cli(sandbox.base_url, *FAST)
    assert undone.returncode == 0, undone.stderr
    fids = [f for f, _ in rows] + [f for f, _ in known_rows(2, start=1_000_010)]
    assert set(holdings(sandbox, fids).values()) == {None}
    job = json.loads(status_cli(undone.out, "--json").stdout)
    assert job["in_fusebill"] == {"latched": 0, "restored": 5, "unknown": 0}


def _readme_fix_loop() -> list[list[str]]:
    """The fix loop's command lines, POSIX and PowerShell, as the README shows them."""
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Fixing rows: the fix loop", 1)[1].split("\n### ", 1)[0]
    lines = []
    for block in re.findall(r"```(sh|powershell)\n(.*?)```", section, re.S):
        for line in block[1].splitlines():
            words = line.split("#", 1)[0].split()
            if words and words[0].replace("\\", "/").endswith("batch-latch"):
                lines.append([w.replace("\\", "/") for w in words[1:]])
    return lines


def _edit(path: Path, encoding: str, fixes: dict[str, str]) -> None:
    """What a script with Python's csv does: read, fix the fusebillIds, write back."""
    with path.open(encoding=encoding, newline="") as handle:
        rows = list(csv.reader(handle))
    at = next(i for i, name in enumerate(rows[0]) if name == "fusebillId")
    for row in rows[1:]:
        row[at] = fixes.get(row[at], row[at])
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)


def _status(status_cli: StatusCli, out: Path) -> dict[str, Any]:
    done = status_cli(out, "--json")
    assert done.returncode == 0, done.stderr
    job: dict[str, Any] = json.loads(done.stdout)
    job["counts"] = {k: v for k, v in job["counts"].items() if v}
    return job


def _ours_in_sandbox(sandbox: Sandbox, pairs: list[tuple[int, str]]) -> int:
    return sum(sandbox.geotab_id_of(f) == g for f, g in pairs)


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_the_readme_fix_loop_and_status_against_the_sandbox(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    plan_cli: RunCli,
    run_cli: RunCli,
    undo_cli: UndoCli,
    status_cli: StatusCli,
    encoding: str,
) -> None:
    sandbox = sandbox_factory()
    good = known_rows(8)
    typos = {"1000O06": "1000006", "10000O7": "1000007"}
    sheet = [*good[:6], ("1000O06", good[6][1]), ("10000O7", good[7][1])]
    source = write_csv(tmp_path / "mapping.csv", sheet)
    out = tmp_path / "mapping-latch"
    words = FAST

    plan = plan_cli(source, sandbox.base_url, *words, out=out)
    assert plan.returncode == 1, plan.stderr
    job = _status(status_cli, out)
    assert job["counts"] == {"valid": 6, "invalid": 2}
    assert job["in_fusebill"] == {"latched": 0, "restored": 0, "unknown": 0}

    run = run_cli(source, sandbox.base_url, *words, out=out)
    assert run.returncode == 1, run.stderr
    job = _status(status_cli, out)
    assert job["counts"] == {"success": 6, "invalid": 2}
    assert job["in_fusebill"]["latched"] == _ours_in_sandbox(sandbox, good) == 6

    _edit(out / "failed.csv", encoding, typos)
    commands = _readme_fix_loop()
    assert len(commands) == 4  # two POSIX lines, two PowerShell lines
    for n, command in enumerate(commands):
        argv = [w.replace("mapping-latch", str(out)) for w in command]
        done = invoke(
            [*argv, "--no-progress", *words], cwd=tmp_path, out=out, base_url=sandbox.base_url
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        rows = done.by_fid()
        # The sheet's own rows, and no input_ column made of ours.
        assert int(rows[1_000_006]["row"]) == 8 and int(rows[1_000_007]["row"]) == 9
        assert not [c for c in done.results()[0] if c.startswith("input_")]
        assert "status" in done.results()[0]
        assert {r["status"] for r in rows.values()} == ({"valid"} if n % 2 == 0 else {"success"})
    assert _ours_in_sandbox(sandbox, good) == 8
    job = _status(status_cli, out)
    assert job["counts"] == {"success": 8}, job
    assert job["in_fusebill"]["latched"] == 8

    rerun = run_cli(source, sandbox.base_url, *words, out=out)  # "the same command"
    assert rerun.returncode == 1
    assert "was changed since batch-latch wrote it" not in rerun.stderr  # the loop goes on
    assert (out / "failed.csv").read_bytes() == (rerun.folder() / "failed.csv").read_bytes()
    job = _status(status_cli, out)
    # The fixed pairs count, whatever input; the newest input's two typo rows are invalid
    # rows again (v4: counted apart, as rows of the newest input).
    assert job["counts"] == {"success": 8, "invalid": 2}, job
    assert job["in_fusebill"] == {"latched": 8, "restored": 0, "unknown": 0}

    undone = undo_cli(sandbox.base_url, *words, out=out)
    assert undone.returncode == 0, undone.stderr
    assert _ours_in_sandbox(sandbox, good) == 0
    job = _status(status_cli, out)
    assert job["counts"] == {"undone": 8, "invalid": 2}, job
    assert job["in_fusebill"] == {"latched": 0, "restored": 8, "unknown": 0}
    text = status_cli(out).stdout
    assert "success" not in text
    assert "undo " in text and "undone" in text


def test_the_runs_table_tells_a_dry_undo_from_a_real_one(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    undo_cli: UndoCli,
    status_cli: StatusCli,
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(2))
    assert run_cli(source, sandbox.base_url, *FAST).returncode == 0
    assert undo_cli(sandbox.base_url, "--dry-run").returncode == 0
    assert undo_cli(sandbox.base_url, *FAST).returncode == 0

    job = _status(status_cli, tmp_path / "out")
    assert [r["kind"] for r in job["runs"]] == ["run", "undo_dry_run", "undo"]
    text = status_cli(tmp_path / "out").stdout
    lines = text.splitlines()
    assert sum("undo --dry-run" in line for line in lines) == 1
    assert sum(" undo " in line and "--dry-run" not in line for line in lines) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_names_host_and_port_not_an_outage(
    tmp_path: Path, run_cli: RunCli
) -> None:
    port = _closed_port()
    source = write_csv(tmp_path / "in.csv", known_rows(25))

    # One read a row, so 25 refused connections make the outage streak (20) that stops
    # the run; a list read of the 25 would be a single failure.
    run = run_cli(
        source, f"http://127.0.0.1:{port}/v1", *FAST, "--max-attempts", "1", "--read-batch", "1"
    )

    assert run.returncode == 3, run.stderr
    line = next(x for x in run.stderr.splitlines() if x.startswith("Stopped"))
    assert f"could not connect to 127.0.0.1:{port}" in line and "FUSEBILL_BASE_URL" in line
    assert "looks down" not in run.stderr
    assert "then: Run" not in run.stderr


def test_a_busy_job_and_status_say_who_holds_it(
    tmp_path: Path, run_cli: RunCli, status_cli: StatusCli
) -> None:
    source = write_csv(tmp_path / "in.csv", known_rows(1))
    out = tmp_path / "out"
    assert run_cli(source, "http://127.0.0.1:9/v1", "--dry-run", key=None).returncode == 0

    with history.lock(out):
        busy = run_cli(source, "http://127.0.0.1:9/v1", "--dry-run", key=None)
        shown = status_cli(out)
        job = _status(status_cli, out)

    assert busy.returncode == 2
    holder = f"pid {os.getpid()} on {history.host()} since "
    assert holder in busy.stderr, busy.stderr
    assert f"pid {os.getpid()} on {history.host()}" in shown.stdout, shown.stdout
    assert "running" in shown.stdout, shown.stdout
    running = job["running"]
    assert (running["pid"], running["host"]) == (os.getpid(), history.host()), running
    assert running["since"], running
    assert _status(status_cli, out)["running"] is None  # released


def test_help_names_the_variables_and_the_exit_codes(tmp_path: Path) -> None:
    done = invoke(["--help"], cwd=tmp_path, out=tmp_path)

    assert done.returncode == 0
    for name in (
        "FUSEBILL_API_KEY",
        "FUSEBILL_BASE_URL",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
    ):
        assert name in done.stdout, name
    assert "exit codes" in done.stdout
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"^\s+{code}\s", done.stdout, re.M), code


def test_the_row_about_to_be_sent_at_the_stop_keeps_the_earlier_message(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(force_status={1_000_000: 500, 1_000_001: 500})
    source = write_csv(tmp_path / "in.csv", [(1_000_000, "A"), (1_000_001, "B")])
    first = run_cli(source, sandbox.base_url, "--max-attempts", "1", "--workers", "1")
    assert [r["status"] for r in first.results()] == ["failed", "failed"]
    said = first.by_row()[2]["message"]
    assert "gave up after 1 attempt" in said

    # One request: row 2's read; its latch was next when --max-requests stopped the run.
    second = run_cli(source, sandbox.base_url, "--max-requests", "1", "--workers", "1")

    assert second.returncode == 3, second.stderr
    for n in (2, 3):
        row = second.by_row()[n]
        assert row["status"] == "pending"
        assert "earlier run said" in row["message"] and "HTTP 500" in row["message"], row


def test_columns_not_found_names_the_file(tmp_path: Path, run_cli: RunCli) -> None:
    source = write_csv(tmp_path / "mapping-typo.csv", [(1, "A")], header=("customer", "geo"))

    done = run_cli(source, "http://127.0.0.1:9/v1", "--dry-run", key=None)

    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "mapping-typo.csv" in line and "column" in line


@pytest.mark.slow
def test_the_demo_leaves_the_runs_reports_in_its_out(tmp_path: Path) -> None:
    out = tmp_path / "batch-latch-demo"

    done = invoke(["demo", "--out", out], cwd=tmp_path, out=out, key=None, timeout=180)

    assert done.returncode == 0, done.stderr
    assert "open the reports" in done.stdout
    summary = done.summary()
    assert summary["kind"] == "run" and not summary["dry_run"]
    assert len(done.results()) == summary["rows"] > 4
    assert all(r["change"] != "undo" for r in done.results())


def test_undo_reports_carry_the_sheet_row_of_each_latch(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    sandbox = sandbox_factory()
    # A title line, a blank row and an invalid row: sheet rows are not 2, 3, ...
    source = tmp_path / "in.csv"
    source.write_text(
        "Latches for May\nfusebillId,geotabId\n1000001,A\n\nbad,B\n1000002,C\n1000003,D\n",
        encoding="utf-8",
    )
    run = run_cli(source, sandbox.base_url, *FAST)
    assert run.returncode == 1, run.stderr
    sheet = {int(r["fusebillId"]): r["row"] for r in run.results() if r["status"] == "success"}
    assert sheet == {1_000_001: "3", 1_000_002: "6", 1_000_003: "7"}

    dry = undo_cli(sandbox.base_url, "--dry-run")
    real = undo_cli(sandbox.base_url, *FAST)

    for done in (dry, real):
        assert done.returncode == 0, done.stderr
        assert {int(r["fusebillId"]): r["row"] for r in done.results()} == sheet


@pytest.mark.slow
def test_on_a_terminal_the_bar_keeps_counts_and_time_left_and_counts_down_a_pause(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    # One request every 2 s gets through; the others hear 429 with Retry-After: 30.
    sandbox = sandbox_factory(rate_limit=0.5, retry_after_seconds=30)
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(6))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # 160 columns
    live = Background(
        ["run", sheet, "--out", tmp_path / "out", "--workers", "1"],
        sandbox.base_url,
        tmp_path,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    seen = bytearray()

    def frames() -> list[str]:
        while select.select([master], [], [], 0.05)[0]:
            try:
                seen.extend(os.read(master, 65536))
            except OSError:
                break
        text = seen.decode("utf-8", errors="replace").replace("\n", "\r")
        return [f for f in text.split("\r") if "paused, " in f]

    try:
        try:
            wait_for(lambda: len(frames()) >= 1, deadline=60, what="a paused frame")
        except AssertionError:
            raise AssertionError(bytes(seen[-3000:])) from None
        first = frames()[0]
        assert "ok=" in first and "/6" in first and "<" in first, first  # counts, time left
        left = int(re.search(r"paused, (\d+) s left", first).group(1))  # type: ignore[union-attr]
        wait_for(
            lambda: any(f"paused, {n} s left" in f for f in frames() for n in range(left - 1)),
            deadline=30,
            what="the countdown",
        )
    finally:
        live.proc.send_signal(signal.SIGTERM)
        live.proc.wait(30)
        os.close(master)
    assert live.proc.returncode == 143


def test_one_row_one_request_and_thousands_separators_everywhere(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    plan_cli: RunCli,
    status_cli: StatusCli,
) -> None:
    sandbox = sandbox_factory()
    one = write_csv(tmp_path / "one.csv", known_rows(1))
    stopped = run_cli(one, sandbox.base_url, "--max-requests", "1", out=tmp_path / "one")
    assert stopped.returncode == 3, stopped.stderr
    text = stopped.stdout + stopped.stderr
    assert ": 1 row, 1 request sent (1 read, 0 writes)" in stopped.stdout, stopped.stdout
    assert "--max-requests 1 request;" in text and "1 row is pending" in text, text
    assert not re.search(r"\b1 (rows|requests|reads)\b", text), text
    assert "then: Run" not in text

    many = write_csv(tmp_path / "many.csv", known_rows(1_200))
    dry = run_cli(many, sandbox.base_url, "--dry-run", key=None, out=tmp_path / "many")
    assert dry.returncode == 0
    assert "1,200 rows" in dry.stdout and "1,200" in dry.stdout.split("valid", 1)[1]
    # A dry run is not the job's input (v4: pairs and what is left come from the sheet of
    # its latest run or plan): a plan of the same sheet makes its 1,200 pairs the job's.
    planned = plan_cli(many, sandbox.base_url, *FAST, out=tmp_path / "many")
    assert planned.returncode == 0, planned.stderr
    shown = status_cli(tmp_path / "many").stdout
    assert "1,200 pairs" in shown and "1,200 rows" in shown, shown
    assert re.search(r"valid\s+1,200\n", shown), shown
