"""``batch-latch check [INPUT]`` in-process (``cli.main``) against a real sandbox on loopback
(contract v4 "Check"): the five lines in order, the exit codes, the ``--json`` shape, at most
five requests, and nothing written anywhere."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_latch import cli
from batch_latch.sandbox import CustomerList, Sandbox, SandboxConfig
from batch_latch.settings import KEY_VARIABLE, URL_VARIABLE

KEY = "sk_live_CHECK_SECRET_77"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (KEY_VARIABLE, URL_VARIABLE, "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(api_key=KEY, port=0)) as running:
        yield running


def _use(monkeypatch: pytest.MonkeyPatch, base: str, key: str | None = KEY) -> None:
    monkeypatch.setenv(URL_VARIABLE, base)
    if key is not None:
        monkeypatch.setenv(KEY_VARIABLE, key)


def _sheet(folder: Path, rows: list[tuple[object, object]]) -> Path:
    lines = ["fusebillId,geotabId", *(f"{a},{b}" for a, b in rows)]
    path = folder / "book.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(n: int) -> list[tuple[object, object]]:
    return [(1_000_000 + i, f"G{i:05d}") for i in range(n)]


def _check(capsys: pytest.CaptureFixture[str], *words: object) -> tuple[int, list[str], str]:
    code = cli.main(["check", *map(str, words)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def test_a_ready_setup_is_five_lines_in_order_exit_0_and_writes_nothing(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, sandbox.base_url)
    source = _sheet(tmp_path, _rows(300))
    before = _files(tmp_path)
    code, lines, err = _check(capsys, source)
    assert code == 0, (lines, err)
    assert [line.split()[0] for line in lines] == ["key", "api", "limits", "list", "input"]
    assert "trusted: reads cost one request per 100 rows" in lines[3]
    assert lines[4].startswith("input  300 rows: 300 valid, 0 invalid, 0 duplicate")
    assert "a plan sends 3 requests" in lines[4] and "a run 303 requests" in lines[4]
    assert "1,000 a minute; 180,000 a day" in lines[2]
    assert KEY not in "\n".join(lines) + err
    assert _files(tmp_path) == before  # no job folder, no file
    requests = sandbox.requests_log()
    assert 1 <= len(requests) <= 5
    assert all(r.method == "GET" for r in requests)


def test_json_is_one_object_with_exactly_the_contracts_keys(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, sandbox.base_url)
    code, lines, _ = _check(capsys, _sheet(tmp_path, _rows(10)), "--json")
    data = json.loads("\n".join(lines))
    assert code == 0
    assert set(data) == {
        "ready", "exit_code", "base_url", "requests", "checks", "limits", "list", "input",
        "estimate",
    }  # fmt: skip
    assert data["ready"] is True and data["exit_code"] == 0
    assert data["base_url"] == sandbox.base_url
    assert data["requests"] == len(sandbox.requests_log()) <= 5
    assert [c["name"] for c in data["checks"]] == ["key", "api", "limits", "list", "input"]
    assert all(set(c) == {"name", "ok", "detail"} for c in data["checks"])
    assert set(data["limits"]) == {"per_minute", "per_day", "left_today", "day_resets_at"}
    assert data["limits"]["per_minute"] == 1000 and data["limits"]["per_day"] == 180_000
    assert data["list"]["trusted"] is True and set(data["list"]) == {"trusted", "detail"}
    assert data["input"] == {"rows": 10, "valid": 10, "invalid": 0, "duplicate": 0}
    assert set(data["estimate"]) == {"plan_requests", "run_requests", "run_days"}
    assert data["estimate"]["plan_requests"] == 1 and data["estimate"]["run_requests"] == 11


def test_no_key_is_exit_2_and_no_request(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, sandbox.base_url, key=None)
    code, lines, _ = _check(capsys, _sheet(tmp_path, _rows(3)))
    assert code == 2
    assert lines == [
        "key    FUSEBILL_API_KEY is not set: put your Fusebill API key in the environment or "
        "in a .env file (see .env.example); --dry-run needs no key"
    ]
    assert sandbox.requests_log() == []


def test_a_wrong_key_is_exit_3_on_the_api_line(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, sandbox.base_url, key="sk_live_WRONG")
    code, lines, _ = _check(capsys, _sheet(tmp_path, _rows(3)))
    assert code == 3
    assert [line.split()[0] for line in lines] == ["key", "api"]
    assert lines[1].startswith("api    Fusebill rejected the API key (HTTP 401")
    assert len(sandbox.requests_log()) == 1


def test_a_refused_connection_is_exit_3_naming_host_port_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _use(monkeypatch, f"http://127.0.0.1:{port}/v1")
    code, lines, _ = _check(capsys, _sheet(tmp_path, _rows(3)))
    assert code == 3
    assert lines[1].startswith(f"api    could not connect to 127.0.0.1:{port} (")
    assert "check FUSEBILL_BASE_URL (host and port)" in lines[1]
    assert len(lines) == 2


@pytest.mark.parametrize("mode", ["ignores-filter", "no-geotab"])
def test_a_list_that_cannot_be_trusted_is_exit_1(
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Sandbox(SandboxConfig(api_key=KEY, port=0, customer_list=CustomerList(mode))) as sandbox:
        _use(monkeypatch, sandbox.base_url)
        code, lines, _ = _check(capsys, _sheet(tmp_path, _rows(5)))
        assert len(sandbox.requests_log()) <= 5
    assert code == 1
    assert lines[3].startswith("list   cannot be trusted here: ")
    assert lines[3].endswith("; reads will cost a request each")
    # the estimate then counts a read a row: 5 reads, 5 writes
    assert "a plan sends 5 requests" in lines[4] and "a run 10 requests" in lines[4]


def test_invalid_rows_are_exit_1_with_the_dry_runs_counts(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, sandbox.base_url)
    rows = [*_rows(4), ("x12", "G9"), (1_000_000, "G00000")]
    code, lines, _ = _check(capsys, _sheet(tmp_path, rows))
    assert code == 1
    assert lines[4].startswith("input  6 rows: 4 valid, 1 invalid, 1 duplicate; ")


def test_without_input_there_is_no_input_line_and_at_most_five_requests(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(monkeypatch, sandbox.base_url)
    code, lines, _ = _check(capsys)
    assert [line.split()[0] for line in lines] == ["key", "api", "limits", "list"]
    assert lines[1].startswith(f"api    {sandbox.base_url} answers in Fusebill's format")
    # The sandbox's unfiltered list pages through its customers: the list is checked.
    assert lines[3].startswith("list   trusted: reads cost one request per 100 rows")
    assert code == 0
    assert len(sandbox.requests_log()) <= 5


def test_read_batch_1_does_not_check_the_list(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, sandbox.base_url)
    code, lines, _ = _check(capsys, _sheet(tmp_path, _rows(3)), "--read-batch", "1")
    assert code == 0
    assert lines[3] == "list   not checked: --read-batch 1 reads every customer alone"
    assert len(sandbox.requests_log()) == 1
