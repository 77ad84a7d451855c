"""Loopback runs through the real CLI (a subprocess) against the sandbox."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batch_latch.sandbox import Sandbox, SandboxConfig

KEY = "sk_live_TOPSECRET_9f8e7d6c5b4a"


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
        return json.loads((self.out / "summary.json").read_text(encoding="utf-8"))

    def by_row(self) -> dict[int, dict[str, str]]:
        return {int(r["row"]): r for r in self.results()}


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


def known_rows(n: int, start: int = 1_000_000) -> list[tuple[int, str]]:
    return [(start + i, f"G{i:05d}") for i in range(n)]


def cli_env(base_url: str, key: str = KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBILL_")}
    env["FUSEBILL_API_KEY"] = key
    env["FUSEBILL_BASE_URL"] = base_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "batch_latch", *map(str, args)]


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def start(**options: Any) -> Sandbox:
        sandbox = Sandbox(SandboxConfig(api_key=KEY, **options)).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., Run]:
    def run(
        input_file: Path,
        base_url: str,
        *options: object,
        key: str = KEY,
        out: Path | None = None,
        timeout: float = 120,
    ) -> Run:
        out = out or tmp_path / "out"
        done = subprocess.run(
            cli_command("run", input_file, "--out", out, "--no-progress", *options),
            env=cli_env(base_url, key),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Run(done.returncode, done.stdout, done.stderr, out)

    return run


def latch_requests(sandbox: Sandbox, fusebill_id: int | None = None) -> list[Any]:
    return [
        r
        for r in sandbox.requests_log()
        if r.method == "POST"
        and r.path.lower().endswith("/latchcustomer")
        and (fusebill_id is None or r.fusebill_id == fusebill_id)
    ]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll a condition (not a fixed sleep): fail loudly if it never becomes true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
