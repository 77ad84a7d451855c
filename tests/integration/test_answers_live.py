"""v2 honest answers on a real network: a 2xx proves itself or is read back; configuration
errors (redirects, a wrong URL) stop at once; 429s never make a storm; long pauses stop."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    cli_command,
    cli_env,
    known_rows,
    latch_requests,
    read_requests,
    wait_for,
    write_csv,
)


class Stub:
    """A loopback server that answers every request the same way, and counts them."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.times: list[float] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                stub.times.append(time.monotonic())
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory() -> Iterator[type[Stub]]:
    started: list[Stub] = []

    class Tracked(Stub):
        def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
            super().__init__(status, headers, body)
            started.append(self)

    yield Tracked
    for stub in started:
        stub.stop()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["html_200_rate", "empty_200_rate"])
def test_a_2xx_that_proves_nothing_is_not_success_and_is_sent_again(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, fault: str
) -> None:
    bad = sandbox_factory(**{fault: 1.0})
    rows = known_rows(3)
    source = write_csv(tmp_path / "in.csv", rows)

    first = run_cli(source, bad.base_url, *FAST)

    assert first.returncode == 1, first.stderr
    for row in first.results():
        assert (row["status"], row["error_key"]) == ("failed", "unconfirmed"), row
        assert row["change"] == ""
    # read, latch (a 200 that proves nothing), read-back: per row
    assert len(read_requests(bad)) == 6
    assert len(latch_requests(bad)) == 3
    port = bad.port
    bad.stop()

    healthy = sandbox_factory(port=port)  # the same URL, now answering properly
    second = run_cli(source, healthy.base_url, *FAST)

    assert second.returncode == 0, second.stderr
    assert {r["status"] for r in second.results()} == {"success"}
    assert "earlier" not in second.results()[0]["message"]
    assert len(latch_requests(healthy)) == 3
    for fid, gid in rows:
        assert healthy.geotab_id_of(fid) == gid


@pytest.mark.slow
def test_a_latch_applied_then_answered_504_is_found_by_read_back(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(applied_then_504_rate=1.0)
    rows = known_rows(2)
    source = write_csv(tmp_path / "in.csv", rows)

    run = run_cli(source, sandbox.base_url, "--max-attempts", "2", *FAST)

    assert run.returncode == 0, run.stderr
    for row in run.results():
        assert (row["status"], row["change"]) == ("success", "new"), row
        assert "read-back" in row["message"]
    for fid, gid in rows:
        assert sandbox.geotab_id_of(fid) == gid
    assert Counter(r.status for r in latch_requests(sandbox)) == {504: 4}


def test_a_redirect_stops_at_once_and_names_the_location(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    target = "https://api.example.com/v1"
    sandbox = sandbox_factory(redirect_to=target)
    source = write_csv(tmp_path / "in.csv", known_rows(12))

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 3, run.stderr
    assert {r["status"] for r in run.results()} == {"pending"}
    said = run.stderr_lines(target)
    assert said and "FUSEBILL_BASE_URL" in said[0], run.stderr
    assert len(sandbox.requests_log()) <= 4  # at most the workers' first requests
    assert latch_requests(sandbox) == []
    assert run.summary()["stop_reason"] == "redirect"


@pytest.mark.parametrize(
    "server",
    [
        "sandbox-without-v1",
        "plain-404",
    ],
)
def test_a_wrong_base_url_stops_at_once_and_records_no_row_as_not_found(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    stub_factory: type[Stub],
    run_cli: RunCli,
    server: str,
) -> None:
    if server == "plain-404":
        page = b"<html><body><h1>404 Not Found</h1></body></html>"
        url = stub_factory(404, {"Content-Type": "text/html"}, page).base_url
    else:  # the /v1 left out of FUSEBILL_BASE_URL
        url = sandbox_factory().base_url.removesuffix("/v1")
    source = write_csv(tmp_path / "in.csv", known_rows(6))

    first = run_cli(source, url, *FAST)

    assert first.returncode == 3, first.stdout + first.stderr
    assert {r["status"] for r in first.results()} == {"pending"}
    said = first.stderr_lines("FUSEBILL_BASE_URL")
    assert said and url in said[0], first.stderr
    # Nothing was recorded as not_found: the same command again still sends them.
    second = run_cli(source, url, *FAST)
    assert second.returncode == 3
    assert not any("earlier run" in r["message"] for r in second.results())


@pytest.mark.slow
def test_429s_with_retry_after_0_never_make_a_storm(
    tmp_path: Path, stub_factory: type[Stub]
) -> None:
    body = b'{"HttpStatusCode":429,"Errors":[{"Key":"Api Error","Value":"Rate limit exceeded"}]}'
    stub = stub_factory(429, {"Retry-After": "0", "Content-Type": "application/json"}, body)
    source = write_csv(tmp_path / "in.csv", known_rows(3))
    proc = subprocess.Popen(
        cli_command(
            "run",
            source,
            "--out",
            tmp_path / "out",
            "--no-progress",
            "--rate",
            "200",
            "--workers",
            "2",
        ),
        env=cli_env(stub.base_url),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(stub.times) >= 1, what="the first 429")
        first = stub.times[0]
        wait_for(lambda: time.monotonic() >= first + 3.5, what="a 3.5 s window")
        in_window = [t for t in stub.times if t <= first + 3.5]
        # Pauses of at least 1 s that grow: a handful of requests, not hundreds.
        assert len(in_window) <= 8, len(in_window)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_a_retry_after_of_a_day_stops_and_says_when_to_run_again(
    tmp_path: Path, stub_factory: type[Stub], run_cli: RunCli
) -> None:
    body = b'{"ErrorId":0,"HttpStatusCode":429,"Errors":[{"Key":"Api Error","Value":"Too many"}]}'
    stub = stub_factory(429, {"Retry-After": "86400", "Content-Type": "application/json"}, body)
    source = write_csv(tmp_path / "in.csv", known_rows(3))

    started = time.monotonic()
    run = run_cli(source, stub.base_url, *FAST, timeout=60)

    assert time.monotonic() - started < 20
    assert run.returncode == 3, run.stderr
    assert {r["status"] for r in run.results()} == {"pending"}
    assert run.summary()["stop_reason"] == "long_pause"
    said = run.stderr_lines("again")
    assert said and "after" in said[0], run.stderr
    assert len(stub.times) <= 4  # at most the workers' first requests
