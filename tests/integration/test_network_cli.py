"""The real CLI against the middle of a real network, on loopback only: HTTPS with a CA made
here, a CONNECT proxy (and one answering 407), ``~/.netrc``, bodies that drip past
``--timeout``, Ctrl-C during a drip, 429 pauses (visible, floored, too long), the daily quota
with and without ``--wait-for-quota``, the estimate at the account's limits, redirects and a
base URL without ``/v1``.

Contract v2: "Configuration", "How responses are treated", "Resume" (Ctrl-C).

A command runs in this process with the environment a child would get (the tool reads its
CA, proxy and key variables from it when the command starts and lets requests read nothing
behind its back), or as a subprocess where it is signalled (Ctrl-C, and to end a pause).
This machine sets ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``/``CURL_CA_BUNDLE`` to the system
bundle, so every environment sets or removes all three explicitly. Nothing sleeps and
hopes: waits are on stderr lines (read by a thread) or on request logs, with deadlines;
wall times are measured with ``time.monotonic``, for a subprocess from the moment it says
"Sending" (stamped as the line arrives), so an interpreter's start on a loaded machine is
in none of them, and with bounds set against the failure they catch (retries, a drip of a
minute, a pause of a day), not against how fast this machine happens to be.
"""

from __future__ import annotations

import math
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import certifi
import pytest
import trustme

from batch_latch.sandbox import Sandbox
from tests import netdoubles as nd
from tests.doubles import wait_for
from tests.integration.conftest import (
    KEY,
    Run,
    SandboxFactory,
    cli_command,
    cli_env,
    in_process,
    job_db,
    known_rows,
    latch_requests,
    read_requests,
    write_csv,
)

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
#: Interpreter start, imports and reading the sheet, on a shared 2-core machine: a deadline
#: for the first line or request, never part of a measured time. Long, as it bounds only a
#: failing test: at load 10, 13 s passed before a child's first request.
STARTUP = 60.0
#: A stop and its reports, from the "Sending" line to the exit, on a loaded 2-core machine:
#: generous, so the bounds below test the network handling, not the box's load. Each is set
#: against a failure that costs far more (retries with backoff, a drip, a pause).
PROMPT = 10.0
WORKERS = 4
# One-by-one reads (--read-batch 1): these tests are about the network, and want every
# worker's first request in flight together.
PACE = ("--rate", "200", "--workers", str(WORKERS), "--read-batch", "1")
CLOCK = re.compile(r"until (\d\d):(\d\d):(\d\d)\b")

Env = Mapping[str, str | None]


# --- running the CLI -------------------------------------------------------------------------


def child_env(base_url: str, changes: Env | None = None) -> dict[str, str]:
    """:func:`cli_env` without any CA or proxy variable, then ``changes`` (None removes)."""
    env = cli_env(base_url)
    for name in (*CA_VARIABLES, *PROXY_VARIABLES):
        env.pop(name, None)
        env.pop(name.lower(), None)
    for name, value in (changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@dataclass
class TimedRun(Run):
    elapsed: float = 0.0  # seconds the command took (a process: from its "Sending" line)


class Live:
    """A CLI run in the background; a thread reads stderr line by line, so a test can wait
    for a line (with a deadline), send SIGINT and time the exit."""

    def __init__(self, words: list[object], env: dict[str, str], cwd: Path, out: Path) -> None:
        self.out = out
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cli_command(*words),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._stamps: list[float] = []  # time.monotonic() as each stderr line arrived
        self._stdout: list[str] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_err, daemon=True),
            threading.Thread(target=self._read_out, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            at = time.monotonic()
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._stamps.append(at)
                self._cond.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self._stdout.extend(self.proc.stdout)

    def lines(self, needle: str = "") -> list[str]:
        with self._cond:
            return [line for line in self._lines if needle in line]

    def wait_line(self, pattern: str, timeout: float) -> str:
        """The first stderr line matching ``pattern`` (a regex); fails at the deadline or
        when the process ends without one."""
        return self.wait_stamped_line(pattern, timeout)[1]

    def wait_stamped_line(self, pattern: str, timeout: float) -> tuple[float, str]:
        """:meth:`wait_line`, with the ``time.monotonic()`` at which the line arrived."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next(
                    (
                        (at, line)
                        for at, line in zip(self._stamps, self._lines)
                        if regex.search(line)
                    ),
                    None,
                )
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._readers[0].is_alive()):
                    raise AssertionError(
                        f"no stderr line matching {pattern!r} (exit {self.proc.poll()}):\n"
                        + "\n".join(self._lines)
                    )
                self._cond.wait(min(left, 0.1))

    def interrupt(self) -> float:
        """Ctrl-C (SIGINT) once; the monotonic time it was sent."""
        self.proc.send_signal(signal.SIGINT)
        return time.monotonic()

    def finish(self, timeout: float) -> TimedRun:
        """Wait for the exit (at most ``timeout`` s); the run as :class:`Run` sees it."""
        self.proc.wait(timeout)
        self.ended = time.monotonic()
        for reader in self._readers:
            reader.join(5)
        with self._cond:
            stderr = "\n".join(self._lines)
            sending = (at for at, line in zip(self._stamps, self._lines) if "Sending " in line)
            first = next(sending, self.started)
        out = "".join(self._stdout)
        return TimedRun(self.proc.returncode, out, stderr, self.out, self.ended - first)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


StartCli = Callable[..., Live]
RunHere = Callable[..., TimedRun]


@pytest.fixture
def sheet(tmp_path: Path) -> Callable[[int], Path]:
    """``sheet(n)``: a CSV of ``n`` known sandbox customers."""
    return lambda n: write_csv(tmp_path / f"sheet{n}.csv", known_rows(n))


@pytest.fixture
def start_cli(tmp_path: Path) -> Iterator[StartCli]:
    """``start_cli(input, base_url, *options, env=...)``: ``run`` in the background."""
    started: list[Live] = []

    def start(input_file: Path, base_url: str, *options: object, env: Env | None = None) -> Live:
        out = tmp_path / f"out{len(started)}"
        words: list[object] = ["run", input_file, "--out", out, "--no-progress", *options]
        live = Live(words, child_env(base_url, env), tmp_path, out)
        started.append(live)
        return live

    yield start
    for live in started:
        live.kill()


@pytest.fixture
def run_here(tmp_path: Path) -> RunHere:
    """``run_here(input, base_url, *options, env=...)``: ``run`` to its end, in this process
    with the environment a child would get (CA and proxy variables and all: the tool reads
    them from its environment when a command starts, and lets requests read none behind its
    back, so no process of its own is needed). ``elapsed`` is the whole command's time,
    with no interpreter start in it."""
    made = [0]

    def run(
        input_file: Path,
        base_url: str,
        *options: object,
        env: Env | None = None,
        timeout: float = 60,
    ) -> TimedRun:
        out = tmp_path / f"here{made[0]}"
        made[0] += 1
        words = ["run", input_file, "--out", out, "--no-progress", *options]
        started = time.monotonic()
        done = in_process(words, cwd=tmp_path, out=out, env=child_env(base_url, env))
        took = time.monotonic() - started
        return TimedRun(done.returncode, done.stdout, done.stderr, out, took)

    return run


def statuses(run: Run) -> set[str]:
    return {row["status"] for row in run.results()}


def assert_stopped_pending(run: Run, rows: int) -> None:
    """Exit 3, every row ``pending``, reports written."""
    assert run.returncode == 3, run.stderr
    assert [row["status"] for row in run.results()] == ["pending"] * rows, run.results()
    assert run.summary()["exit_code"] == 3


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> str:
    return nd.ca_file(ca, tmp_path)


TlsSandbox = Callable[..., tuple[Sandbox, str]]


@pytest.fixture
def tls_sandbox(sandbox_factory: SandboxFactory, ca: trustme.CA, tmp_path: Path) -> TlsSandbox:
    """``tls_sandbox(*names, expired=False, **config)``: the sandbox serving HTTPS with a
    certificate for ``names`` (default ``localhost``) from ``ca``; (sandbox, base URL on
    ``localhost``)."""
    made = [0]

    def start(*names: str, expired: bool = False, **config: object) -> tuple[Sandbox, str]:
        begin = end = None
        if expired:
            now = datetime.now().astimezone()
            begin, end = now - timedelta(days=30), now - timedelta(days=1)
        leaf = ca.issue_cert(*(names or ("localhost",)), not_before=begin, not_after=end)
        made[0] += 1
        cert, key = tmp_path / f"leaf{made[0]}.pem", tmp_path / f"leaf{made[0]}.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        sandbox = sandbox_factory(tls_cert=cert, tls_key=key, **config)
        return sandbox, f"https://localhost:{sandbox.port}/v1"

    return start


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_https_sandbox_trusted_through_a_ca_variable(
    run_here: RunHere,
    sheet: Callable[[int], Path],
    tls_sandbox: TlsSandbox,
    bundle: str,
    variable: str,
) -> None:
    sandbox, url = tls_sandbox()
    run = run_here(sheet(3), url, *PACE, env={variable: bundle})
    assert run.returncode == 0, run.stderr
    assert statuses(run) == {"success"}
    assert len(latch_requests(sandbox)) == 3
    assert url in run.stderr  # "Sending 3 rows to https://localhost:.../v1"


@pytest.mark.parametrize("trusting", ["system bundle", "another CA"])
def test_untrusted_certificate_stops_at_once_with_its_cause(
    run_here: RunHere,
    sheet: Callable[[int], Path],
    tls_sandbox: TlsSandbox,
    tmp_path: Path,
    trusting: str,
) -> None:
    sandbox, _ = tls_sandbox()
    other = tmp_path / "other"
    other.mkdir()
    wrong = certifi.where() if trusting == "system bundle" else nd.ca_file(trustme.CA(), other)
    rows = 10
    with nd.TcpRelay(sandbox.port) as relay:  # counts connection attempts, handshakes or not
        run = run_here(
            sheet(rows),
            f"https://localhost:{relay.port}/v1",
            *PACE,
            env={"REQUESTS_CA_BUNDLE": wrong, "SSL_CERT_FILE": None, "CURL_CA_BUNDLE": None},
        )
    assert_stopped_pending(run, rows)
    assert run.elapsed < PROMPT
    stops = run.stderr_lines("Stopped:")
    assert len(stops) == 1, run.stderr
    assert "certificate verify failed" in stops[0]
    assert "unable to get local issuer certificate" in stops[0]
    assert "REQUESTS_CA_BUNDLE" in stops[0]
    # The run stopped at the first failure: at most one attempt per worker, no retry storm,
    # and nothing (no key) reached the server it could not verify.
    assert 1 <= relay.connections <= WORKERS
    assert sandbox.requests_log() == []


@pytest.mark.parametrize(
    ("names", "expired", "cause"),
    [
        (("localhost",), True, "certificate has expired"),
        (("elsewhere.test",), False, "Hostname mismatch"),
    ],
    ids=["expired", "hostname-mismatch"],
)
def test_bad_certificate_stops_naming_the_cause(
    run_here: RunHere,
    sheet: Callable[[int], Path],
    tls_sandbox: TlsSandbox,
    bundle: str,
    names: tuple[str, ...],
    expired: bool,
    cause: str,
) -> None:
    sandbox, url = tls_sandbox(*names, expired=expired)
    env = {"REQUESTS_CA_BUNDLE": bundle, "SSL_CERT_FILE": None, "CURL_CA_BUNDLE": None}
    run = run_here(sheet(4), url, *PACE, env=env)
    assert_stopped_pending(run, 4)
    stops = run.stderr_lines("Stopped:")
    assert len(stops) == 1, run.stderr
    assert cause in stops[0], stops[0]
    assert "REQUESTS_CA_BUNDLE" in stops[0]
    assert sandbox.requests_log() == []


# --- proxies and ~/.netrc --------------------------------------------------------------------


def test_https_proxy_carries_the_run_through_connect(
    run_here: RunHere, sheet: Callable[[int], Path], tls_sandbox: TlsSandbox, bundle: str
) -> None:
    sandbox, url = tls_sandbox()
    with nd.ConnectProxy() as proxy:
        run = run_here(
            sheet(3), url, *PACE, env={"REQUESTS_CA_BUNDLE": bundle, "HTTPS_PROXY": proxy.url}
        )
    assert run.returncode == 0, run.stderr
    assert statuses(run) == {"success"}
    assert proxy.requests, "the proxy saw nothing"
    assert all(line.startswith(f"CONNECT localhost:{sandbox.port} ") for line in proxy.requests)
    assert not any(KEY.encode() in head for head in proxy.heads)  # the key went inside TLS only
    assert len(latch_requests(sandbox)) == 3


def test_no_proxy_bypasses_the_proxy(
    run_here: RunHere, sheet: Callable[[int], Path], tls_sandbox: TlsSandbox, bundle: str
) -> None:
    _, url = tls_sandbox()
    with nd.ConnectProxy() as proxy:
        env = {
            "REQUESTS_CA_BUNDLE": bundle,
            "HTTPS_PROXY": proxy.url,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        run = run_here(sheet(3), url, *PACE, env=env)
    assert run.returncode == 0, run.stderr
    assert statuses(run) == {"success"}
    assert proxy.requests == []


def test_proxy_answering_407_stops_at_once_naming_the_variables(
    run_here: RunHere, sheet: Callable[[int], Path], tls_sandbox: TlsSandbox, bundle: str
) -> None:
    sandbox, url = tls_sandbox()
    rows = 10
    with nd.ConnectProxy(answer_407=True) as proxy:
        env = {"REQUESTS_CA_BUNDLE": bundle, "HTTPS_PROXY": proxy.url}
        run = run_here(sheet(rows), url, *PACE, env=env)
    assert_stopped_pending(run, rows)
    assert run.elapsed < PROMPT
    naming = run.stderr_lines("HTTPS_PROXY")
    assert len(naming) == 1, run.stderr
    assert "407" in naming[0] and "NO_PROXY" in naming[0]
    assert 1 <= len(proxy.requests) <= WORKERS  # no retries against a refusing proxy
    assert sandbox.requests_log() == []


def test_netrc_never_replaces_the_key_header(
    run_here: RunHere, sheet: Callable[[int], Path], sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(
        "machine 127.0.0.1 login intruder password hunter2\n"
        "machine localhost login intruder password hunter2\n"
        "default login intruder password hunter2\n",
        encoding="utf-8",
    )
    netrc.chmod(0o600)
    sandbox = sandbox_factory()  # answers 401 to any Authorization but the key's
    run = run_here(sheet(3), sandbox.base_url, *PACE, env={"HOME": str(home), "NETRC": str(netrc)})
    assert run.returncode == 0, run.stderr
    assert statuses(run) == {"success"}
    assert {entry.status for entry in sandbox.requests_log()} == {200}


# --- whole-request timeout and Ctrl-C --------------------------------------------------------


@pytest.mark.slow
def test_dripping_answers_are_cut_at_the_deadline(
    run_here: RunHere, sheet: Callable[[int], Path], sandbox_factory: SandboxFactory
) -> None:
    # Every body drips a byte per 0.5 s: ~100 bytes take ~50 s, far beyond --timeout 1.
    sandbox = sandbox_factory(drip_seconds=0.5)
    rows, workers, timeout, attempts = 6, 3, 1.0, 1
    run = run_here(
        sheet(rows),
        sandbox.base_url,
        *("--rate", "200", "--workers", workers),
        *("--timeout", timeout, "--max-attempts", attempts),
        *("--read-batch", 1),  # one read a row: each worker's reads are cut one after another
    )
    # No backoff follows a last attempt: each worker's rows take their deadlines, end to end.
    work = math.ceil(rows / workers) * attempts * timeout
    # Uncut, each drip would take a minute or more.
    assert work <= run.elapsed < work + PROMPT, run.stderr
    assert run.returncode in (1, 3), run.stderr
    results = run.results()
    assert {row["status"] for row in results} <= {"failed", "pending"}
    for row in results:
        if row["status"] == "failed":
            assert "within 1 s" in row["message"], row
    assert len(read_requests(sandbox)) == rows * attempts  # one cut read per row, no write
    assert latch_requests(sandbox) == []  # never written blind after an unreadable read


@pytest.mark.slow
def test_ctrl_c_during_an_endless_drip_exits_within_the_timeout(
    start_cli: StartCli, sheet: Callable[[int], Path], sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory(drip_seconds=0.5)
    timeout = 3.0
    live = start_cli(sheet(4), sandbox.base_url, *PACE, "--timeout", timeout)
    wait_for(lambda: len(read_requests(sandbox)) >= 1, deadline=30, what="a read in flight")
    sent = live.interrupt()
    run = live.finish(timeout + 30)
    took = live.ended - sent
    assert run.returncode == 130, run.stderr
    # The read in flight is cut at its deadline; uncut, its drip would go on for a minute.
    assert took <= timeout + PROMPT, f"exit {took:.1f} s after Ctrl-C"
    assert (run.out / "results.csv").is_file()
    assert statuses(run) == {"pending"}
    assert run.summary()["exit_code"] == 130
    assert latch_requests(sandbox) == []


# --- pauses ----------------------------------------------------------------------------------


def limited_sandbox(sandbox_factory: SandboxFactory, retry_after: int) -> Sandbox:
    """One request every 2 s gets through; answers take 100 ms, so the workers' first
    requests are in flight together and all but one get a 429 with ``Retry-After``."""
    return sandbox_factory(rate_limit=0.5, latency_ms=100, retry_after_seconds=retry_after)


def seconds_ahead(hh: str, mm: str, ss: str, *, at: float) -> float:
    """How far a HH:MM:SS is ahead of the local wall clock at the monotonic time ``at``
    (across midnight too)."""
    now = datetime.now().astimezone() - timedelta(seconds=time.monotonic() - at)
    told = int(hh) * 3600 + int(mm) * 60 + int(ss)
    here = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6
    return (told - here + 43200) % 86400 - 43200


def test_a_long_429_pause_is_told_with_its_end_and_cause(
    start_cli: StartCli, sheet: Callable[[int], Path], sandbox_factory: SandboxFactory
) -> None:
    sandbox = limited_sandbox(sandbox_factory, retry_after=6)
    live = start_cli(sheet(WORKERS), sandbox.base_url, *PACE)
    # Unanchored: another notice may share the line (see test_notices_from_workers_stay_whole).
    at, line = live.wait_stamped_line(r"Pausing \d+ s until ", timeout=STARTUP)
    line = line[line.index("Pausing ") :]
    assert any(e.status == 429 for e in sandbox.requests_log())
    clock = CLOCK.search(line)
    assert clock, line
    # Retry-After 6, local time; against the clock when the line came, not when it was read.
    assert 3 <= seconds_ahead(*clock.groups(), at=at) <= 7.5, line
    assert "429" in line, line  # the cause
    live.interrupt()
    run = live.finish(30)
    assert run.returncode == 130, run.stderr
    assert run.stderr.count("Pausing ") == 1, run.stderr


@pytest.mark.slow
def test_retry_after_zero_makes_no_storm(start_cli: StartCli, sheet: Callable[[int], Path]) -> None:
    # Every answer is a 429 saying "Retry-After: 0", with no rate headers to go by.
    body = {"ErrorId": 0, "HttpStatusCode": 429, "Errors": [{"Key": "", "Value": "Too many"}]}
    workers, window = 2, 4.0
    answer = nd.json_answer(429, body, {"Retry-After": "0"})
    arrivals: list[float] = []  # time.monotonic() as each request came

    def respond(exchange: nd.Exchange) -> None:
        arrivals.append(time.monotonic())
        answer(exchange)

    with nd.Loopback(respond) as server:
        live = start_cli(sheet(3), f"{server.url}/v1", "--rate", 200, "--workers", workers)
        wait_for(lambda: bool(arrivals), deadline=STARTUP, what="a request")
        # The window being measured, not a wait for something to happen; the count below
        # is by arrival time, so a sleep that overshoots on a loaded machine counts nothing more.
        time.sleep(max(0.0, arrivals[0] + window - time.monotonic()))
        live.interrupt()
        run = live.finish(30)
    count = sum(at <= arrivals[0] + window for at in list(arrivals))
    # Pauses of at least 1 s that double (1, 2, 4...): within `window` s at most
    # log2(window) + 1 pauses end, and each lets every worker send once. A storm at --rate
    # 200 would be ~800 requests.
    bound = workers * (math.log2(window) + 2)
    assert 2 <= count <= bound, f"{count} requests in the {window:g} s after the first"
    assert run.returncode == 130, run.stderr
    assert statuses(run) == {"pending"}


def test_a_retry_after_of_a_day_stops_saying_when_to_run_again(
    run_here: RunHere, sheet: Callable[[int], Path], sandbox_factory: SandboxFactory
) -> None:
    sandbox = limited_sandbox(sandbox_factory, retry_after=86400)
    run = run_here(sheet(WORKERS), sandbox.base_url, *PACE)
    assert_stopped_pending(run, WORKERS)
    assert run.elapsed < PROMPT
    stops = run.stderr_lines("Stopped:")
    assert len(stops) == 1, run.stderr
    tomorrow = (datetime.now().astimezone() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert "again after" in stops[0] and tomorrow in stops[0], stops[0]
    assert len(sandbox.requests_log()) <= WORKERS + 1


# --- daily quota and the estimate at the account's limits ------------------------------------


def test_spent_daily_quota_stops_naming_the_reset(
    run_here: RunHere, sheet: Callable[[int], Path]
) -> None:
    quota = nd.DailyQuota(reset_in=3.0)
    with nd.Loopback(quota) as server:
        run = run_here(sheet(4), f"{server.url}/v1", *PACE)
    assert_stopped_pending(run, 4)
    stops = run.stderr_lines("daily API quota")
    assert len(stops) == 1, run.stderr
    reset = datetime.fromtimestamp(quota.reset_at, tz=timezone.utc)
    assert f"{reset:%Y-%m-%d %H:%M} UTC" in stops[0], stops[0]
    assert f"({reset.astimezone():%Y-%m-%d %H:%M} local)" in stops[0], stops[0]
    assert "--wait-for-quota" in stops[0]
    assert len(quota.answers) <= WORKERS


@pytest.mark.slow
def test_wait_for_quota_waits_for_the_reset_then_finishes(
    run_here: RunHere, sheet: Callable[[int], Path]
) -> None:
    quota = nd.DailyQuota(reset_in=3.0)
    with nd.Loopback(quota) as server:
        run = run_here(sheet(4), f"{server.url}/v1", *PACE, "--wait-for-quota")
    assert run.returncode == 0, run.stderr
    assert statuses(run) == {"success"}
    waiting = run.stderr_lines("waiting until it resets")
    # Said once per reset; concurrent "spent" answers may repeat the same line (reported).
    assert len(set(waiting)) == 1, run.stderr
    reset = datetime.fromtimestamp(quota.reset_at, tz=timezone.utc)
    assert f"{reset:%Y-%m-%d %H:%M} UTC" in waiting[0], waiting[0]
    assert f"({reset.astimezone():%Y-%m-%d %H:%M} local)" in waiting[0], waiting[0]
    # Only the requests already in flight heard "spent"; nothing was sent until the reset.
    spent = [at for at, was_spent in quota.answers if was_spent]
    assert 1 <= len(spent) <= WORKERS
    assert all(at >= quota.reset_at for at, was_spent in quota.answers if not was_spent)
    assert len(quota.answers) == 8  # 4 reads (the spent ones were good reads) and 4 writes


@pytest.mark.parametrize(
    ("config", "expect"),
    [
        # ~238 requests at 50 a minute: ~4.8 min.
        (
            {},
            r"50 a minute, 5,000 a day less 500 left to other integrations: the (\d+) "
            r"requests left take about 5 min at them",
        ),
        # ~238 requests at 90 a day after today's rest: in days, what is left of today counted.
        (
            {"day_limit": 100},
            r"50 a minute, 100 a day less 10 left to other integrations: the (\d+) "
            r"requests left take about [12]\.\d days at them",
        ),
    ],
    ids=["minute-limit", "day-quota"],
)
def test_estimate_at_the_accounts_limits(
    start_cli: StartCli,
    sheet: Callable[[int], Path],
    sandbox_factory: SandboxFactory,
    config: dict[str, int],
    expect: str,
) -> None:
    sandbox = sandbox_factory(profile="sandbox", **config)
    live = start_cli(sheet(120), sandbox.base_url, *PACE)
    line = live.wait_line(r"This account's limits are ", timeout=STARTUP)
    live.interrupt()
    run = live.finish(30)
    found = re.search(expect, line)
    assert found, line
    sent_before = 120 * 2 - int(found.group(1))  # a read and a write per row
    assert 0 < sent_before <= 2 * WORKERS, line  # told at the first answer
    assert run.returncode == 130, run.stderr


# --- configuration errors: redirects and a wrong base URL ------------------------------------


def test_sandbox_redirect_stops_naming_the_location(
    run_here: RunHere, sheet: Callable[[int], Path], sandbox_factory: SandboxFactory
) -> None:
    target = "https://billing.example.test/v1"
    sandbox = sandbox_factory(redirect_to=target)
    rows = 10
    run = run_here(sheet(rows), sandbox.base_url, *PACE)
    assert_stopped_pending(run, rows)
    stops = run.stderr_lines("Stopped:")
    assert len(stops) == 1, run.stderr
    assert target in stops[0] and "301" in stops[0] and "FUSEBILL_BASE_URL" in stops[0]
    assert len(sandbox.requests_log()) <= WORKERS


@pytest.mark.parametrize("status", [302, 307, 308])
def test_redirecting_server_stops_naming_the_location(
    run_here: RunHere, sheet: Callable[[int], Path], status: int
) -> None:
    target = "https://secure.fusebill.example/v1/customers/1000000"
    rows = 10
    with nd.Loopback(nd.redirect(status, target)) as server:
        run = run_here(sheet(rows), f"{server.url}/v1", *PACE)
    assert_stopped_pending(run, rows)
    stops = run.stderr_lines("Stopped:")
    assert len(stops) == 1, run.stderr
    assert target in stops[0] and str(status) in stops[0] and "FUSEBILL_BASE_URL" in stops[0]
    assert 1 <= len(server.seen) <= WORKERS


def assert_wrong_url_stop(run: Run, base: str, rows: int) -> None:
    assert_stopped_pending(run, rows)
    stops = run.stderr_lines("Stopped:")
    assert len(stops) == 1, run.stderr
    assert f"{base}/customers/" in stops[0] and "FUSEBILL_BASE_URL" in stops[0], stops[0]
    # No row recorded not_found on a wrong URL's 404: the job's pairs are all pending.
    assert job_db(run.out, "SELECT * FROM events WHERE status = 'not_found'") == []
    assert job_db(run.out, "SELECT status, count(*) FROM pairs GROUP BY status") == [
        ("pending", rows)
    ]


def test_base_url_without_v1_stops_naming_the_url(
    run_here: RunHere, sheet: Callable[[int], Path]
) -> None:
    # A web server's own 404 for an unknown path ({"Message": ...}), not Fusebill's format.
    # (The sandbox's is Fusebill's format about the route: the test below.)
    with nd.Loopback(nd.fusebill) as server:
        run = run_here(sheet(5), server.url, *PACE)
        assert len(server.seen) <= WORKERS
    assert_wrong_url_stop(run, server.url, 5)


def test_base_url_without_v1_against_the_sandbox_stops_naming_the_url(
    run_here: RunHere, sheet: Callable[[int], Path], sandbox_factory: SandboxFactory
) -> None:
    sandbox = sandbox_factory()
    base = sandbox.base_url.removesuffix("/v1")
    run = run_here(sheet(5), base, *PACE)
    assert_wrong_url_stop(run, base, 5)
