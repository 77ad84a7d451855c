"""SIGTERM and SIGHUP stop a real CLI run the way a first Ctrl-C does: no new requests, the
ones in flight finish, reports written and published, exit 143 and 129; also mid-pause, and
with the terminal gone after a SIGHUP."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from batch_latch.sandbox import Sandbox
from tests.doubles import wait_for
from tests.integration.conftest import (
    FAST,
    Run,
    SandboxFactory,
    cli_command,
    cli_env,
    invoke,
    known_rows,
    read_csv,
    write_csv,
)

STOPS = [(signal.SIGTERM, 143, "terminated"), (signal.SIGHUP, 129, "hangup")]
IDS = ["SIGTERM", "SIGHUP"]


class Background:
    """``run`` as a subprocess; its stderr is read line by line (a test waits for a line)."""

    def __init__(self, words: list[object], base_url: str, cwd: Path, **streams: Any) -> None:
        self.proc = subprocess.Popen(
            cli_command(*words),
            env=cli_env(base_url),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            text=True,
            **({"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | streams),
        )
        self.err: list[str] = []
        self.out: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], lines: list[str]) -> None:
        lines.extend(stream)

    def finish(self, out: Path, timeout: float) -> Run:
        self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return Run(self.proc.returncode, "".join(self.out), "".join(self.err), out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def background(tmp_path: Path) -> Iterator[list[Background]]:
    started: list[Background] = []
    yield started
    for run in started:
        run.kill()


def start(
    started: list[Background], sheet: Path, sandbox: Sandbox, out: Path, *options: object
) -> Background:
    words: list[object] = ["run", sheet, "--out", out, *options]
    run = Background(words, sandbox.base_url, sheet.parent)
    started.append(run)
    return run


def assert_orderly_stop(run: Run, code: int, reason: str, rows: int) -> None:
    """The exit code; this run's reports in OUT/ and in its run folder; none lost."""
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    summary = run.summary()
    assert (summary["exit_code"], summary["stop_reason"], summary["rows"]) == (code, reason, rows)
    folder = run.folder()
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == summary
    assert read_csv(folder / "results.csv") == run.results()
    statuses = [row["status"] for row in run.results()]
    assert len(statuses) == rows and set(statuses) <= {"success", "pending"}
    assert "pending" in statuses, "the signal came too late to stop anything"


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "reason"), STOPS, ids=IDS)
def test_a_signal_mid_run_stops_in_order_and_publishes_this_runs_reports(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    background: list[Background],
    sig: signal.Signals,
    code: int,
    reason: str,
) -> None:
    sandbox = sandbox_factory(latency_ms=150)
    out = tmp_path / "out"
    first = write_csv(tmp_path / "first.csv", known_rows(2, start=2_000_000))
    words = ["run", first, "--out", out, "--no-progress", *FAST]  # nothing to signal: here
    done = invoke(words, cwd=tmp_path, out=out, base_url=sandbox.base_url)
    assert done.returncode == 0, done.stderr  # the previous run: 2 rows, exit 0 in OUT/
    before = len(sandbox.requests_log())

    rows = 40
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(rows))
    live = start(background, sheet, sandbox, out, "--no-progress", *FAST)
    wait_for(lambda: len(sandbox.requests_log()) >= before + 6, deadline=30, what="requests")
    live.proc.send_signal(sig)
    run = live.finish(out, 30)
    assert_orderly_stop(run, code, reason, rows)
    sent = len(sandbox.requests_log()) - before
    assert sent < rows * 2, "the run was not stopped"
    # Every row the sandbox latched is in the report as a success: nothing was cut off.
    latched = sum(sandbox.geotab_id_of(fid) == gid for fid, gid in known_rows(rows))
    assert latched == sum(row["status"] == "success" for row in run.results())


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "reason"), STOPS, ids=IDS)
def test_a_signal_during_a_rate_limit_pause_stops_at_once(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    background: list[Background],
    sig: signal.Signals,
    code: int,
    reason: str,
) -> None:
    # One request every 2 s gets through; the others hear 429 with Retry-After: 60.
    sandbox = sandbox_factory(rate_limit=0.5, latency_ms=100, retry_after_seconds=60)
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(8))
    live = start(background, sheet, sandbox, out, "--no-progress", *FAST)
    wait_for(lambda: any("Pausing " in line for line in live.err), deadline=30, what="a pause")
    sent = time.monotonic()
    live.proc.send_signal(sig)
    run = live.finish(out, 30)
    # The pause is 60 s; an exit within half of it was not waited out, however loaded the box.
    assert time.monotonic() - sent < 30, "the pause was waited out"
    assert_orderly_stop(run, code, reason, 8)


@pytest.mark.slow
def test_after_a_hangup_the_dead_terminal_cannot_fail_the_stop(
    tmp_path: Path, sandbox_factory: SandboxFactory, background: list[Background]
) -> None:
    """stdout and stderr on a terminal (so the progress bar is on), which then goes away:
    writes to it fail (EIO) from then on; SIGHUP follows."""
    sandbox = sandbox_factory(latency_ms=150)
    out = tmp_path / "out"
    rows = 40
    sheet = write_csv(tmp_path / "sheet.csv", known_rows(rows))
    master, slave = pty.openpty()
    live = Background(
        ["run", sheet, "--out", out, *FAST], sandbox.base_url, tmp_path, stdout=slave, stderr=slave
    )
    background.append(live)
    os.close(slave)
    seen, draining = bytearray(), threading.Event()
    draining.set()

    def drain() -> None:  # a terminal shows what it is sent; a full one would block the run
        while draining.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    wait_for(lambda: len(sandbox.requests_log()) >= 6, deadline=30, what="requests")
    draining.clear()
    reader.join(5)
    os.close(master)  # the terminal is gone
    live.proc.send_signal(signal.SIGHUP)
    live.proc.wait(30)
    assert b"Sending 40 rows" in seen
    run = Run(live.proc.returncode, "", "", out)
    assert run.returncode == 129
    summary = run.summary()
    assert (summary["exit_code"], summary["stop_reason"], summary["rows"]) == (129, "hangup", rows)
    assert (run.run_folders()[-1] / "results.csv").is_file()
    assert {row["status"] for row in run.results()} <= {"success", "pending"}
