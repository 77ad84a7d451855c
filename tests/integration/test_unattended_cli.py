"""For scripts and for people away from the screen, through the real CLI and the sandbox:
``--json`` on every command and exit path, ``--notify`` (and ``BATCH_LATCH_NOTIFY_URL``)
against a real loopback webhook receiver for every event, a receiver that answers 500 and
a dead port, and the webhook's token and the API key in no output and no file.

Contract v3: "For scripts and for people away from the screen", "Exit codes".
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_latch.sandbox import Sandbox
from tests import netdoubles as nd
from tests.doubles import wait_for
from tests.integration.conftest import (
    FAST,
    KEY,
    Run,
    SandboxFactory,
    assert_key_nowhere,
    cli_command,
    cli_env,
    invoke,
    known_rows,
    write_csv,
)
from tests.integration.test_faults_cli import fill, small_disk

__all__ = ["small_disk"]  # a fixture, used by name

TOKEN = "XOXBtokenT0P5ECRET77"
HOOK_PATH = f"/services/T01/B02/{TOKEN}"
NOTIFY = "BATCH_LATCH_NOTIFY_URL"


class Receiver:
    """A webhook on loopback: records each JSON body, answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._status = status
        self._server = nd.Loopback(self._respond)

    def _respond(self, exchange: nd.Exchange) -> None:
        self.bodies.append(exchange.json())
        exchange.send_json(self._status, {"ok": self._status < 300})

    @property
    def url(self) -> str:
        return self._server.url + HOOK_PATH

    @property
    def seen(self) -> list[nd.Seen]:
        return self._server.seen

    def events(self) -> list[str]:
        return [b["event"] for b in self.bodies]

    def __enter__(self) -> Receiver:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as hook:
        yield hook


class Cli:
    """One CLI command as a subprocess, the webhook URL in its environment (never on its
    command line, as the README asks); stdout and stderr read by threads."""

    def __init__(self, words: list[object], base_url: str, cwd: Path, url: str | None) -> None:
        env = cli_env(base_url)
        if url is not None:
            env[NOTIFY] = url
        self.proc = subprocess.Popen(
            cli_command(*words),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.err: list[str] = []
        self.out: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=lambda s=s, lines=lines: lines.extend(s), daemon=True)
            for s, lines in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))
        ]
        for reader in self._readers:
            reader.start()

    def finish(self, out: Path, timeout: float = 90) -> Run:
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        for reader in self._readers:
            reader.join(10)
        return Run(self.proc.returncode, "".join(self.out), "".join(self.err), out)


def _base(sandbox: Sandbox | None) -> str:
    return sandbox.base_url if sandbox else "http://127.0.0.1:9/v1"


def cli(tmp_path: Path, sandbox: Sandbox | None, *words: object, url: str | None = None) -> Cli:
    """The command in the background, as a process: for the tests that signal it."""
    return Cli([*words, "--no-progress"], _base(sandbox), tmp_path, url)


def command(
    tmp_path: Path, sandbox: Sandbox | None, *words: object, out: Path, url: str | None = None
) -> Run:
    """The command to its end, in this process (the webhook URL in its environment): what
    it prints, notifies and writes do not depend on being a process of its own."""
    env = {NOTIFY: url} if url is not None else {}
    words = (*words, "--no-progress")
    return invoke(words, cwd=tmp_path, out=out, base_url=_base(sandbox), env=env)


def parsed(run: Run) -> dict[str, Any]:
    """stdout is exactly one JSON object: every summary.json key, plus ``reports``."""
    data: dict[str, Any] = json.loads(run.stdout)
    assert isinstance(data, dict)
    summary = run.summary()
    assert {k: v for k, v in data.items() if k != "reports"} == summary
    assert data["exit_code"] == run.returncode
    reports = data["reports"]
    assert set(reports) == {"folder", "results", "failed", "summary", "xlsx"}
    folder = Path(reports["folder"])
    assert folder.is_dir() and folder.parent == (run.out / "runs").absolute()
    for name in ("results", "failed", "summary"):
        path = Path(reports[name])
        assert path == (run.out / path.name).absolute() and path.is_file(), reports
        assert path.read_bytes() == (folder / path.name).read_bytes()
    return data


def assert_notified(hook: Receiver, run: Run, *events: str) -> None:
    assert hook.events() == list(events), (hook.bodies, run.stderr)
    last = hook.bodies[-1]
    assert last["job"] == str(run.out.absolute())
    assert last["summary"] == run.summary()
    assert isinstance(last["text"], str) and "\n" not in last["text"]
    assert "notification" not in run.stderr, run.stderr


def assert_secrets_nowhere(run: Run, hook: Receiver | None = None) -> None:
    """Neither the token nor the key in stdout, stderr or any file under OUT/ (nor the
    URL's path), and the key in no byte the receiver got."""
    for secret in (TOKEN, KEY, "/services/T01"):
        assert_key_nowhere(run.out, run.stdout, run.stderr, key=secret)
    for seen in hook.seen if hook else []:
        assert KEY not in seen.body.decode() and "authorization" not in seen.headers


# --- the end of a command, notified and as JSON ------------------------------------------


def test_a_run_that_finishes_notifies_once_and_prints_its_json(
    tmp_path: Path, sandbox_factory: SandboxFactory, receiver: Receiver
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", [*known_rows(3), (5, "GX")])  # 5 is not known
    done = command(
        tmp_path, sandbox, "run", sheet, "--out", out, *FAST, "--json", out=out, url=receiver.url
    )
    assert done.returncode == 1, done.stderr
    data = parsed(done)
    assert data["counts"]["success"] == 3 and data["counts"]["not_found"] == 1
    assert "Sending 4 rows" in done.stderr  # stderr is unchanged
    assert_notified(receiver, done, "finished")
    assert "finished with rows to look at" in receiver.bodies[0]["text"]
    assert_secrets_nowhere(done, receiver)


def test_a_stopped_run_notifies_stopped_and_prints_json(
    tmp_path: Path, sandbox_factory: SandboxFactory, receiver: Receiver
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(6))
    done = command(
        tmp_path, sandbox, "run", sheet, "--out", out, *FAST, "--max-requests", "3", "--json",
        out=out, url=receiver.url,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert parsed(done)["stop_reason"] == "max_requests"
    assert_notified(receiver, done, "stopped")
    assert "stopped early (max requests)" in receiver.bodies[0]["text"]
    assert_secrets_nowhere(done, receiver)


STOPS = [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "reason"), STOPS, ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_notifies_interrupted_and_prints_json(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    receiver: Receiver,
    sig: signal.Signals,
    code: int,
    reason: str,
) -> None:
    sandbox = sandbox_factory(latency_ms=150)
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(40))
    run = cli(tmp_path, sandbox, "run", sheet, "--out", out, *FAST, "--json", url=receiver.url)
    wait_for(lambda: len(sandbox.requests_log()) >= 6, deadline=30, what="requests")
    run.proc.send_signal(sig)
    done = run.finish(out)
    assert done.returncode == code, done.stderr
    assert parsed(done)["stop_reason"] == reason
    assert_notified(receiver, done, "interrupted")
    assert_secrets_nowhere(done, receiver)


@pytest.mark.slow
def test_a_quota_wait_is_notified_when_it_starts_and_sigterm_ends_it(
    tmp_path: Path, sandbox_factory: SandboxFactory, receiver: Receiver
) -> None:
    """The sandbox's day of 4 requests is spent after two rows: the run waits for the UTC
    midnight reset (``--wait-for-quota``), says so to the webhook, and SIGTERM ends it."""
    sandbox = sandbox_factory(day_limit=4)
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(6))
    words = ("run", sheet, "--out", out, "--rate", "200", "--workers", "1", "--json")
    run = cli(tmp_path, sandbox, *words, "--wait-for-quota", url=receiver.url)
    wait_for(lambda: receiver.events() == ["waiting"], deadline=60, what="the waiting message")
    waiting = receiver.bodies[0]
    assert "is waiting for the daily quota to reset (until " in waiting["text"]
    assert waiting["job"] == str(out.absolute())
    assert waiting["summary"]["kind"] == "run" and waiting["summary"]["rows"] == 6
    assert waiting["summary"]["requests"] >= 4
    run.proc.send_signal(signal.SIGTERM)
    done = run.finish(out, 60)
    assert done.returncode == 143, done.stderr
    assert parsed(done)["stop_reason"] == "terminated"
    assert_notified(receiver, done, "waiting", "interrupted")
    assert_secrets_nowhere(done, receiver)


# --- a notification that fails changes nothing ---------------------------------------------


def test_a_receiver_answering_500_is_one_line_and_changes_nothing(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    sheet = write_csv(tmp_path / "in.csv", known_rows(3))
    with Receiver(status=500) as hook:
        a, b = tmp_path / "a", tmp_path / "b"
        done = command(tmp_path, sandbox, "plan", sheet, "--out", a, out=a, url=hook.url)
    quiet = command(tmp_path, sandbox, "plan", sheet, "--out", b, out=b)
    assert done.returncode == quiet.returncode == 0, done.stderr
    assert len(hook.seen) == 2  # one retry
    lines = done.stderr_lines("notification")
    assert len(lines) == 1, done.stderr
    assert lines[0] == f"notification to {hook.url.split('/services')[0]}/… failed: " + (
        "HTTP 500 (tried twice)"
    )
    assert done.summary()["counts"] == quiet.summary()["counts"]
    assert sorted(p.name for p in done.out.iterdir()) == sorted(p.name for p in quiet.out.iterdir())
    assert_secrets_nowhere(done, hook)


def test_a_dead_port_is_one_line_and_the_json_is_unchanged(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(2))
    with nd.closed_port() as port:
        url = f"http://127.0.0.1:{port}{HOOK_PATH}"
        done = command(tmp_path, sandbox, "run", sheet, "--out", out, "--json", out=out, url=url)
    assert done.returncode == 0, done.stderr
    assert parsed(done)["counts"]["success"] == 2
    [line] = done.stderr_lines("notification")
    assert line == f"notification to http://127.0.0.1:{port}/… failed: connection refused " + (
        "(tried twice)"
    )
    assert_secrets_nowhere(done)


@pytest.mark.parametrize(
    "url",
    [f"http://hooks.example.com{HOOK_PATH}", f"ftp://127.0.0.1{HOOK_PATH}", "https://u:p@x.test/"],
)
def test_a_bad_notify_url_is_exit_2_in_one_line_before_anything_is_sent(
    tmp_path: Path, sandbox_factory: SandboxFactory, url: str
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(2))
    done = command(tmp_path, sandbox, "run", sheet, "--out", out, "--json", out=out, url=url)
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1 and "--notify" in done.stderr, done.stderr
    assert TOKEN not in done.stderr and "u:p" not in done.stderr
    assert sandbox.requests_log() == [] and not out.exists()


def test_the_option_wins_over_the_variable(
    tmp_path: Path, sandbox_factory: SandboxFactory, receiver: Receiver
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(1))
    words = ("run", sheet, "--out", out, "--notify", receiver.url)
    done = command(tmp_path, sandbox, *words, out=out, url="http://example.com/not-loopback")
    assert done.returncode == 0, done.stderr
    assert receiver.events() == ["finished"]


# --- --json on every command and exit path --------------------------------------------------


def test_json_on_plan_dry_run_undo_and_undo_dry_run(
    tmp_path: Path, sandbox_factory: SandboxFactory, receiver: Receiver
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", [*known_rows(2), ("x1", "G9")])  # one invalid row
    steps: list[tuple[tuple[object, ...], int, str]] = [
        (("run", sheet, "--out", out, "--dry-run"), 1, "dry-run"),
        (("plan", sheet, "--out", out), 1, "plan"),
        (("run", sheet, "--out", out), 1, "run"),
        (("undo", out, "--dry-run"), 0, "undo"),
        (("undo", out), 0, "undo"),
    ]
    for words, code, kind in steps:
        done = command(tmp_path, sandbox, *words, *FAST[:2], "--json", out=out, url=receiver.url)
        assert done.returncode == code, (words, done.stderr)
        data = parsed(done)
        assert data["kind"] == kind and data["dry_run"] == ("--dry-run" in words)
        assert receiver.bodies[-1]["summary"] == done.summary()
    assert receiver.events() == ["finished"] * len(steps)
    assert_secrets_nowhere(done, receiver)


def test_a_file_level_error_is_its_one_line_exit_2_and_an_empty_stdout(
    tmp_path: Path, receiver: Receiver
) -> None:
    out = tmp_path / "out"
    for words in (
        ("run", tmp_path / "missing.csv", "--out", out, "--json"),
        ("plan", write_csv(tmp_path / "bad.csv", [], header=("a", "b")), "--out", out, "--json"),
        ("undo", tmp_path / "not-a-job", "--json"),
    ):
        done = command(tmp_path, None, *words, out=out, url=receiver.url)
        assert (done.returncode, done.stdout) == (2, ""), words
        assert len(done.stderr.splitlines()) == 1, done.stderr
    assert receiver.bodies == []


@pytest.mark.slow
def test_a_receiver_that_never_answers_is_cut_at_10_s(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(1))
    with nd.Loopback(nd.hang) as hook:
        run = cli(tmp_path, sandbox, "run", sheet, "--out", out, "--json", url=hook.url + "/h")
        wait_for(lambda: bool(hook.seen), deadline=60, what="the notification")
        started = time.monotonic()
        done = run.finish(out, 60)
        waited = time.monotonic() - started
    assert done.returncode == 0 and parsed(done)["exit_code"] == 0, done.stderr
    # The 10 s bound, and the exit after it (a receiver without it would hang up at 10 s
    # and the line would say the connection, not "no answer within 10 s").
    assert waited < 10 + 8, waited
    [line] = done.stderr_lines("notification")
    assert "no answer within 10 s" in line, line


# --- a full disk after requests went out: still JSON, still a message ------------------------


@pytest.mark.slow
def test_a_full_disk_mid_run_still_prints_json_and_notifies_stopped(
    tmp_path: Path, small_disk: Path, sandbox_factory: SandboxFactory, receiver: Receiver
) -> None:
    sandbox = sandbox_factory()
    fill(small_disk, 120)  # room for the lock's line, job.db and about a dozen latches
    out = small_disk / "out"
    sheet = write_csv(tmp_path / "in.csv", known_rows(400))
    words = ("run", sheet, "--out", out, "--rate", "400", "--workers", "4", "--json")
    done = command(tmp_path, sandbox, *words, out=out, url=receiver.url)
    assert done.returncode == 3, done.stderr
    data = json.loads(done.stdout)
    [line] = [x for x in done.stderr.splitlines() if x.startswith("batch-latch: error:")]
    assert data["exit_code"] == 3 and data["reports"] == {}
    assert data["error"] == line.removeprefix("batch-latch: error: ")
    assert (data["kind"], data["rows"], data["input"]) == ("run", 400, str(sheet))
    assert receiver.events() == ["stopped"]
    assert receiver.bodies[0]["summary"]["stop_message"] == data["error"]
