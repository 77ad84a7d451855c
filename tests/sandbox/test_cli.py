"""The sandbox's options, its config, and ``serve`` as a process (one line, clean stop)."""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import trustme

from batch_latch.sandbox import (
    DEFAULT_API_KEY,
    CustomerList,
    ListHeaders,
    Sandbox,
    SandboxConfig,
    config_from_args,
    configure_parser,
)

from .helpers import REPO

# --- configuration and CLI -------------------------------------------------------------------


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SandboxConfig(fail_rate=1.5)
    with pytest.raises(ValueError):
        SandboxConfig(api_key="")
    with pytest.raises(ValueError):
        SandboxConfig(force_status={1_000_001: 200})
    with pytest.raises(ValueError):
        Sandbox(minute_seconds=0)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batch-latch sandbox")
    configure_parser(parser)
    return parser.parse_args(list(argv))


def test_parser_defaults_and_options() -> None:
    config = config_from_args(parse())
    assert (config.host, config.port, config.profile) == ("127.0.0.1", 8765, "live")
    assert config.api_key == DEFAULT_API_KEY
    config = config_from_args(
        parse(
            "--port=0",
            "--profile=sandbox",
            "--rate-limit=2.5",
            "--retry-after",
            "--latency-ms=5",
            "--fail-rate=0.1",
            "--drop-rate=0.2",
            "--stall-first-ms=300",
            "--relatch-status=409",
            "--mismatch-id=1000001",
            "--mismatch-id=1000002",
            "--force-status=1000003:403",
            "--force-status=1000004:400",
            "--minute-seconds=2",
            "--reset-format=epoch",
            "--seed=3",
            "--log=x.jsonl",
            "--api-key=k",
        )
    )
    assert config.rate_limit == 2.5
    assert config.retry_after
    assert config.mismatch_ids == {1_000_001, 1_000_002}
    assert dict(config.force_status) == {1_000_003: 403, 1_000_004: 400}
    assert (config.relatch_status, config.seed, config.minute_seconds) == (409, 3, 2.0)
    assert (config.latency_ms, config.stall_first_ms) == (5, 300)
    assert (config.fail_rate, config.drop_rate) == (0.1, 0.2)
    assert (config.reset_format, config.log_path, config.api_key) == ("epoch", "x.jsonl", "k")


@pytest.mark.parametrize(
    "argv",
    [
        ["--port=70000"],
        ["--fail-rate=1.5"],
        ["--drop-rate=-0.1"],
        ["--rate-limit=0"],
        ["--latency-ms=-1"],
        ["--profile=gold"],
        ["--force-status=abc"],
        ["--force-status=1000001:200"],
        ["--relatch-status=200"],
        ["--mismatch-id=-5"],
        ["--minute-seconds=0"],
        ["--reset-format=unix"],
        ["--api-key="],
        ["--customer-list=partial"],
        ["--list-headers=total"],
    ],
)
def test_parser_rejects_out_of_range(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        parse(*argv)
    assert excinfo.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# The 60 s deadlines on these child processes bound only a failing test: an interpreter's
# start alone took over 10 s on a loaded 2-core machine.
SERVE = (
    "import argparse, sys\n"
    "from batch_latch.sandbox import configure_parser, serve\n"
    "parser = argparse.ArgumentParser()\n"
    "configure_parser(parser)\n"
    "sys.exit(serve(parser.parse_args(sys.argv[1:])))\n"
)


def start_serve(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", SERVE, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            raise AssertionError("the sandbox printed nothing")
    return proc.stdout.readline()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_prints_one_line_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = start_serve("--port", "0", "--profile", "sandbox")
    try:
        line = first_line(proc)
        prefix = "batch-latch sandbox listening on "
        assert line.startswith(prefix)
        assert line.endswith(" (profile sandbox); 0 preset customers start latched\n")
        base_url = line[len(prefix) :].split(" ")[0]
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        response = requests.get(
            f"{base_url}/customers/1000001",
            headers={"Authorization": f"Basic {DEFAULT_API_KEY}"},
            timeout=5,
        )
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit-Limit-Minute"] == "50"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out == ""
    assert err == ""


def test_serve_on_a_taken_port_is_one_line_no_traceback(sandbox: Sandbox) -> None:
    port = sandbox.base_url.rsplit(":", 1)[1].split("/")[0]
    proc = start_serve("--port", port)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0
    assert "already in use" in err


def test_every_option_has_a_line_of_help() -> None:
    parser = argparse.ArgumentParser(prog="batch-latch sandbox")
    configure_parser(parser)
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(options) == 30
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
    text = parser.format_help()
    for flag in (
        "--preset",
        "--hide-geotab-id",
        "--customer-list",
        "--list-headers",
        "--tls-cert",
        "--tls-key",
        "--html-200-rate",
        "--empty-200-rate",
        "--applied-then-504-rate",
        "--drip",
        "--drip-id",
        "--redirect-to",
        "--retry-after",
    ):
        assert flag in text


def test_parser_network_options(tmp_path: Path) -> None:
    preset = tmp_path / "preset.csv"
    preset.write_text("fusebillId,geotabId\n1000001,G1\n", encoding="utf-8")
    config = config_from_args(
        parse(
            f"--preset={preset}",
            "--hide-geotab-id",
            "--customer-list=no-geotab",
            "--html-200-rate=0.1",
            "--empty-200-rate=0.2",
            "--applied-then-504-rate=0.3",
            "--drip=0.5",
            "--drip-id=1000002",
            "--redirect-to=https://example.invalid/v1",
            "--retry-after=86400",
        )
    )
    assert dict(config.preset_pairs) == {1_000_001: "G1"}
    assert config.hide_geotab_id
    assert config.customer_list is CustomerList.NO_GEOTAB
    assert (config.html_200_rate, config.empty_200_rate, config.applied_then_504_rate) == (
        0.1,
        0.2,
        0.3,
    )
    assert (config.drip_seconds, config.drip_ids) == (0.5, frozenset({1_000_002}))
    assert config.redirect_to == "https://example.invalid/v1"
    assert (config.retry_after, config.retry_after_seconds) == (True, 86_400)
    assert config_from_args(parse("--retry-after=0")).retry_after_seconds == 0
    plain = config_from_args(parse())
    assert (plain.retry_after, plain.retry_after_seconds, plain.preset) == (False, None, None)
    assert plain.customer_list is CustomerList.FULL
    assert plain.list_headers is ListHeaders.DOCS
    assert not plain.tls
    for style in ListHeaders:
        assert config_from_args(parse(f"--list-headers={style.value}")).list_headers is style


def test_serve_says_how_many_preset_customers_start_latched(tmp_path: Path) -> None:
    preset = tmp_path / "preset.csv"
    preset.write_text("fusebillId,geotabId\n1000001,G1\n1000002,G2\n", encoding="utf-8")
    proc = start_serve("--port", "0", "--preset", str(preset))
    try:
        line = first_line(proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert line.endswith(" (profile live); 2 preset customers start latched\n")
    assert (proc.returncode, out, err) == (0, "", "")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_serve_refuses_a_host_off_loopback_in_one_line(host: str) -> None:
    proc = start_serve("--port", "0", "--host", host)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert err.startswith("batch-latch sandbox: --host ") and "not a loopback address" in err
    assert err.strip().count("\n") == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert SandboxConfig(host=host).host == host


def test_a_config_off_loopback_is_refused_too() -> None:
    with pytest.raises(ValueError, match="host must be a loopback address"):
        SandboxConfig(host="0.0.0.0")


@pytest.mark.parametrize(
    "argv",
    [
        ["--html-200-rate=2"],
        ["--empty-200-rate=-1"],
        ["--applied-then-504-rate=x"],
        ["--drip=-1"],
        ["--drip=61"],
        ["--drip-id=abc"],
        ["--redirect-to=example.com"],
        ["--retry-after=-5"],
    ],
)
def test_parser_rejects_bad_network_options(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        parse(*argv)
    assert excinfo.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--preset", "{unknown}"], "2 id(s) are not sandbox customers"),
        (["--preset", "{missing}"], "cannot read it"),
        (["--tls-cert", "{unknown}", "--tls-key", "{unknown}"], "cannot use the TLS certificate"),
        (["--tls-cert", "{unknown}"], "tls_cert and tls_key go together"),
    ],
)
def test_serve_refuses_a_bad_preset_or_tls_file_in_one_line(
    tmp_path: Path, argv: list[str], expected: str
) -> None:
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("fusebillId,geotabId\n55,A\n123,B\n", encoding="utf-8")
    paths = {"unknown": str(unknown), "missing": str(tmp_path / "missing.csv")}
    proc = start_serve("--port", "0", *(arg.format(**paths) for arg in argv))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert err.startswith("batch-latch sandbox: ")
    assert err.strip().count("\n") == 0
    assert expected in err


def test_serve_with_tls_prints_an_https_url(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    proc = start_serve("--port", "0", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert first_line(proc).startswith("batch-latch sandbox listening on https://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (0, "", "")
