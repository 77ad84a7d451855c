"""Loopback runs through the real CLI (a subprocess) against the sandbox."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from batch_latch.sandbox import LoggedRequest, Sandbox, SandboxConfig
from tests.doubles import wait_for

KEY = "sk_live_TOPSECRET_9f8e7d6c5b4a"
#: Fast pace for loopback: most tests need neither the default rate nor its workers.
FAST = ("--rate", "200", "--workers", "4")
#: Variables of the parent environment that must not leak into a loopback CLI run.
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    def results(self) -> list[dict[str, str]]:
        return read_csv(self.out / "results.csv")

    def failed(self) -> list[dict[str, str]]:
        return read_csv(self.out / "failed.csv")

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out / "summary.json").read_text(encoding="utf-8"))
        return data

    def by_row(self) -> dict[int, dict[str, str]]:
        return {int(r["row"]): r for r in self.results()}

    def by_fid(self) -> dict[int, dict[str, str]]:
        return {int(r["fusebillId"]): r for r in self.results()}

    def run_folders(self) -> list[Path]:
        runs = self.out / "runs"
        return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []

    def folder(self) -> Path:
        """This command's own run folder, as its end-of-run summary names it."""
        found = re.search(r"this command's own copy: (.+?)/?\)", self.stdout)
        assert found, self.stdout
        return Path(found.group(1))

    def stderr_lines(self, needle: str) -> list[str]:
        return [line for line in self.stderr.splitlines() if needle in line]


class RunCli(Protocol):
    def __call__(
        self,
        input_file: Path,
        base_url: str,
        *options: object,
        key: str | None = ...,
        out: Path | None = ...,
        timeout: float = ...,
    ) -> Run: ...


class UndoCli(Protocol):
    def __call__(
        self,
        base_url: str,
        *options: object,
        key: str | None = ...,
        out: Path | None = ...,
        timeout: float = ...,
    ) -> Run: ...


class StatusCli(Protocol):
    def __call__(self, out: Path, *options: object) -> Run: ...


SandboxFactory = Callable[..., Sandbox]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(
    path: Path, rows: Sequence[Sequence[object]], header: Sequence[str] = ("fusebillId", "geotabId")
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def job_db(out: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """A query on the job's ledger ``OUT/job.db`` as any SQLite tool (``sqlite3 OUT/job.db
    'select …'``) reads its public views (``runs``, ``events``, ``pairs``, ``customers``)."""
    path = out / "job.db"
    assert path.is_file(), f"no {path}"
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def known_rows(n: int, start: int = 1_000_000) -> list[tuple[int, str]]:
    return [(start + i, f"G{i:05d}") for i in range(n)]


def cli_env(base_url: str, key: str | None = KEY) -> dict[str, str]:
    """The parent's environment without proxies or Fusebill settings, plus ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FUSEBILL_") and k.lower() not in _PROXY_VARIABLES
    }
    if key is not None:
        env["FUSEBILL_API_KEY"] = key
    env["FUSEBILL_BASE_URL"] = base_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "batch_latch", *map(str, args)]


def invoke(
    words: Sequence[object],
    *,
    cwd: Path,
    out: Path,
    base_url: str = "http://127.0.0.1:9/v1",
    key: str | None = KEY,
    timeout: float = 120,
    process: bool = False,
    env: Mapping[str, str] | None = None,
) -> Run:
    """The CLI on ``words``, in this process (``cli.main`` with its own environment, working
    folder and captured streams, as sqlite-utils' ``CliRunner``), or, with ``process``, as a
    child process: for what only a process shows (its exit, its descriptors, signals).
    ``env`` adds variables to :func:`cli_env`'s."""
    environment = {**cli_env(base_url, key), **(env or {})}
    if not process:
        return in_process(words, cwd=cwd, out=out, env=environment)
    done = subprocess.run(
        cli_command(*words),
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(done.returncode, done.stdout, done.stderr, out)


def killed_when(
    words: Sequence[object],
    *,
    cwd: Path,
    base_url: str,
    when: Callable[[], bool],
    what: str,
    deadline: float = 60,
) -> int:
    """The CLI on ``words`` as a child process, sent SIGKILL once ``when()`` holds (waited
    on, never slept): what ``kill -9`` leaves behind. Its exit status (``-SIGKILL``)."""
    proc = subprocess.Popen(
        cli_command(*words),
        env=cli_env(base_url),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(when, deadline=deadline, what=what)
        proc.send_signal(signal.SIGKILL)
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def in_process(words: Sequence[object], *, cwd: Path, out: Path, env: Mapping[str, str]) -> Run:
    """``cli.main(words)`` in this process with exactly ``env`` as its environment, ``cwd``
    as its working folder and its streams captured; all restored after."""
    from batch_latch import cli

    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = cli.main([str(w) for w in words])
            except SystemExit as done:  # argparse's --help, --version and usage errors
                code = done.code if isinstance(done.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Run(code, stdout.getvalue(), stderr.getvalue(), out)


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    started: list[Sandbox] = []

    def start(**options: Any) -> Sandbox:
        sandbox = Sandbox(SandboxConfig(api_key=KEY, **options)).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


def _command_fixture(command: str, tmp_path: Path) -> RunCli:
    def run(
        input_file: Path,
        base_url: str,
        *options: object,
        key: str | None = KEY,
        out: Path | None = None,
        timeout: float = 120,
    ) -> Run:
        out = out or tmp_path / "out"
        words = [command, input_file, "--out", out, "--no-progress", *options]
        return invoke(words, cwd=tmp_path, out=out, base_url=base_url, key=key, timeout=timeout)

    return run


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """``batch-latch run INPUT --out OUT --no-progress ...``"""
    return _command_fixture("run", tmp_path)


@pytest.fixture
def plan_cli(tmp_path: Path) -> RunCli:
    """``batch-latch plan INPUT --out OUT --no-progress ...``"""
    return _command_fixture("plan", tmp_path)


@pytest.fixture
def undo_cli(tmp_path: Path) -> UndoCli:
    """``batch-latch undo OUT --no-progress ...``"""

    def undo(
        base_url: str,
        *options: object,
        key: str | None = KEY,
        out: Path | None = None,
        timeout: float = 120,
    ) -> Run:
        out = out or tmp_path / "out"
        words = ["undo", out, "--no-progress", *options]
        return invoke(words, cwd=tmp_path, out=out, base_url=base_url, key=key, timeout=timeout)

    return undo


@pytest.fixture
def status_cli(tmp_path: Path) -> StatusCli:
    """``batch-latch status OUT ...`` (no key: it sends nothing)."""

    def status(out: Path, *options: object) -> Run:
        return invoke(["status", out, *options], cwd=tmp_path, out=out, key=None, timeout=60)

    return status


def sandbox_requests(
    sandbox: Sandbox, method: str, route: str, fusebill_id: int | None = None
) -> list[LoggedRequest]:
    """Requests the sandbox saw whose path ends with ``route`` (ignoring case); for one
    customer, the list requests that asked for it count too."""
    route = route.lower()
    return [
        r
        for r in sandbox.requests_log()
        if r.method == method
        and (r.path.lower().endswith(route) or (route == "/customers" and "/customers/" in r.path))
        and (fusebill_id is None or r.fusebill_id == fusebill_id or fusebill_id in r.asked_ids)
    ]


def latch_requests(sandbox: Sandbox, fusebill_id: int | None = None) -> list[LoggedRequest]:
    return sandbox_requests(sandbox, "POST", "/latchcustomer", fusebill_id)


def unlatch_requests(sandbox: Sandbox, fusebill_id: int | None = None) -> list[LoggedRequest]:
    return sandbox_requests(sandbox, "POST", "/unlatchcustomer", fusebill_id)


def read_requests(sandbox: Sandbox, fusebill_id: int | None = None) -> list[LoggedRequest]:
    return sandbox_requests(sandbox, "GET", "/customers", fusebill_id)


def holdings(sandbox: Sandbox, fids: Sequence[int]) -> dict[int, str | None]:
    return {fid: sandbox.geotab_id_of(fid) for fid in fids}


def assert_key_nowhere(root: Path, *texts: str, key: str = KEY) -> None:
    """The key is in no file under ``root`` (xlsx unzipped too) and in none of ``texts``."""
    import zipfile

    for text in texts:
        assert key not in text
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        assert key.encode() not in data, path
        if data[:2] == b"PK":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    assert key.encode() not in archive.read(name), f"{path}!{name}"


def summary_counts(summary: Mapping[str, Any]) -> dict[str, int]:
    """Non-zero status counts of a summary."""
    return {k: int(v) for k, v in summary["counts"].items() if v}
