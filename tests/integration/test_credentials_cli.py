"""Contract v3, "Configuration", through the real CLI: a base URL with credentials, a query or
a fragment is refused at once (exit 2, one line that shows no password, nothing sent,
nothing written); a proxy URL's password is never shown, whatever is wrong with the URL:
not on stdout or stderr, not in any file under OUT (both summary.json copies, the
job.db, the reports).

The fault lab's cases: ``http://user:pass@host/v1`` (requests would send the URL's
credentials instead of the key, and the password was printed and stored in the
job folder); ``HTTPS_PROXY`` with a password and a port over 65535 (the password was on
stderr, stdout and in both summary.json copies: "Failed to parse: http://puser:…").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests import netdoubles as nd
from tests.integration.conftest import (
    FAST,
    Run,
    SandboxFactory,
    assert_key_nowhere,
    cli_env,
    in_process,
    known_rows,
    write_csv,
)

PASSWORD = "pr0xyPW"
URL_PASSWORD = "S3cretUrlPW"
PROXY_NAMES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")

Cli = Callable[..., Run]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """``cli(command, base_url, *options, env={...}, dotenv="")``: one command to its end
    in ``tmp_path`` (``dotenv`` is written to ``tmp_path/.env`` first)."""

    def run(
        command: str,
        base_url: str,
        *options: object,
        env: Mapping[str, str] | None = None,
        dotenv: str = "",
    ) -> Run:
        sheet = write_csv(tmp_path / "sheet.csv", known_rows(4))
        out = tmp_path / "out"
        if dotenv:
            (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
        child = cli_env(base_url)
        for name in PROXY_NAMES:
            child.pop(name, None)
            child.pop(name.lower(), None)
        child.update(env or {})
        words = [command, sheet, "--out", out, "--no-progress", *FAST]
        # In this process, with exactly the environment a child would get: the tool reads
        # the key, .env and the proxy variables from it when the command starts.
        return in_process(words, cwd=tmp_path, out=out, env=child)

    return run


def assert_refused(run: Run, *needles: str) -> str:
    """Exit 2, one stderr line holding ``needles``, nothing on stdout, no OUT."""
    assert run.returncode == 2, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    assert not run.out.exists()
    return lines[0]


def assert_secret_nowhere(run: Run, secret: str, root: Path) -> None:
    """``secret`` (and its tail, in case a parser cut it) in no output and no file."""
    for piece in (secret, secret[2:]):
        assert_key_nowhere(root, run.stdout, run.stderr, key=piece)


# --- the base URL ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "plan"])
@pytest.mark.parametrize(
    ("shape", "what"),
    [
        ("http://puser:{pw}@127.0.0.1:{port}/v1", "credentials"),
        ("http://{pw}@127.0.0.1:{port}/v1", "credentials"),
        ("http://puser:{pw}@127.0.0.1:99999/v1", "credentials"),  # unparsable too
        ("http://127.0.0.1:{port}/v1?apiKey={pw}", "a query"),
        ("http://127.0.0.1:{port}/v1#{pw}", "a fragment"),
    ],
)
def test_a_base_url_with_credentials_query_or_fragment_is_refused_at_once(
    cli: Cli,
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    command: str,
    shape: str,
    what: str,
) -> None:
    sandbox = sandbox_factory()
    run = cli(command, shape.format(pw=URL_PASSWORD, port=sandbox.port))
    line = assert_refused(run, "FUSEBILL_BASE_URL", what)
    assert f"http://127.0.0.1:{sandbox.port}/v1" in line or "[redacted]@" in line
    assert_secret_nowhere(run, URL_PASSWORD, run.out)
    assert sandbox.requests_log() == []


def test_a_dry_run_refuses_such_a_base_url_too(
    cli: Cli, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    run = cli("run", f"http://puser:{URL_PASSWORD}@127.0.0.1:{sandbox.port}/v1", "--dry-run")
    assert_refused(run, "FUSEBILL_BASE_URL", "credentials")
    assert_secret_nowhere(run, URL_PASSWORD, run.out)


# --- proxy URLs the settings can judge -------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "proxy", "why"),
    [
        ("HTTPS_PROXY", "http://puser:{pw}@127.0.0.1:99999", "the port must be 1 to 65535"),
        ("HTTP_PROXY", "http://puser:{pw}@127.0.0.1:99999", "the port must be 1 to 65535"),
        ("https_proxy", "http://puser:{pw}@127.0.0.1:port", "cannot be read"),
        ("ALL_PROXY", "puser:{pw}@127.0.0.1:3128", "no scheme"),
        ("http_proxy", "http://puser:pr/{pw}@127.0.0.1:3128", "percent-encoded"),
        ("all_proxy", "ftp://puser:{pw}@127.0.0.1:21", "scheme"),
    ],
)
@pytest.mark.parametrize("where", ["environment", ".env"])
def test_an_unusable_proxy_url_is_refused_without_its_password(
    cli: Cli,
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    variable: str,
    proxy: str,
    why: str,
    where: str,
) -> None:
    sandbox = sandbox_factory()
    value = proxy.format(pw=PASSWORD)
    if where == "environment":
        run = cli("run", sandbox.base_url, env={variable: value})
    else:
        run = cli("run", sandbox.base_url, dotenv=f"{variable}={value}\n")
    line = assert_refused(run, variable, why, "[redacted]@")
    assert "puser" not in line
    assert_secret_nowhere(run, PASSWORD, run.out)
    assert sandbox.requests_log() == []


# --- proxy URLs that fail only when used -----------------------------------------------------


def assert_proxy_stop(run: Run, rows: int) -> None:
    assert run.returncode == 3, run.stderr
    assert [row["status"] for row in run.results()] == ["pending"] * rows
    summary = run.summary()
    assert summary["exit_code"] == 3 and summary["stop_reason"] == "proxy", summary
    assert "HTTP_PROXY" in summary["stop_message"]


def test_a_proxy_answering_407_to_a_url_with_a_password_shows_it_nowhere(
    cli: Cli, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    with nd.ConnectProxy(answer_407=True) as proxy:
        value = proxy.url.replace("http://", f"http://puser:{PASSWORD}@")
        run = cli("run", sandbox.base_url, env={"HTTP_PROXY": value})
    assert proxy.requests, "the proxy saw nothing"
    assert_proxy_stop(run, 4)
    assert "407" in run.stderr
    assert_secret_nowhere(run, PASSWORD, run.out)
    assert sandbox.requests_log() == []


def test_a_proxy_that_refuses_connections_shows_its_password_nowhere(
    cli: Cli, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    with nd.closed_port() as dead:
        value = f"http://puser:{PASSWORD}@127.0.0.1:{dead}"
        run = cli("run", sandbox.base_url, dotenv=f"HTTP_PROXY={value}\n")
    assert_proxy_stop(run, 4)
    assert f"127.0.0.1:{dead}" in run.stderr
    assert_secret_nowhere(run, PASSWORD, run.out)
    assert sandbox.requests_log() == []
