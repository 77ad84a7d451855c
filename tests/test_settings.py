"""Key and base URL from the environment and ``.env``: what is accepted, and what never leaks."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from batch_latch.errors import ConfigError
from batch_latch.settings import (
    DEFAULT_BASE_URL,
    KEY_VARIABLE,
    NOTIFY_VARIABLE,
    OPTIONS,
    URL_VARIABLE,
    QuotaReserve,
    Settings,
    api_key,
    base_url,
    environment,
    settings_from,
)

KEY = "sk_live_SECRET123"
PROXIES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
PASSWORD = "pr0xyPW"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No key or URL from the machine running the tests, and no .env from the repository."""
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)
    yield


# --- .env and the environment ----------------------------------------------------------------


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f'# rehearsal\n{KEY_VARIABLE}={KEY}\nexport {URL_VARIABLE}="http://127.0.0.1:8080/v1"\n',
        encoding="utf-8",
    )
    env = environment()
    assert env[KEY_VARIABLE] == KEY
    assert env[URL_VARIABLE] == "http://127.0.0.1:8080/v1"
    assert api_key(env).get_secret_value() == KEY
    assert base_url(env) == "http://127.0.0.1:8080/v1"


def test_the_real_environment_wins_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        f"{KEY_VARIABLE}=from_dotenv\n{URL_VARIABLE}=https://dotenv.test/v1\n", encoding="utf-8"
    )
    monkeypatch.setenv(KEY_VARIABLE, "from_environment")
    env = environment()
    assert env[KEY_VARIABLE] == "from_environment"
    assert env[URL_VARIABLE] == "https://dotenv.test/v1"  # not in the real environment


def test_dotenv_of_another_directory_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text(f"{KEY_VARIABLE}={KEY}\n", encoding="utf-8")
    assert KEY_VARIABLE not in environment()
    assert environment(elsewhere)[KEY_VARIABLE] == KEY


def test_no_dotenv_is_fine() -> None:
    env = environment()
    assert KEY_VARIABLE not in env
    with pytest.raises(ConfigError, match=KEY_VARIABLE):
        api_key(env)


def test_unreadable_dotenv_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"FUSEBILL_API_KEY=\xff\xfe\x00bad\n")
    with pytest.raises(ConfigError, match=r"\.env"):
        environment()


# --- the key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {KEY_VARIABLE: ""}, {KEY_VARIABLE: "  \t "}])
def test_missing_key_names_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=KEY_VARIABLE):
        api_key(env)


@pytest.mark.parametrize(
    "bad",
    [
        f" {KEY}",
        f"{KEY}\n",
        f"{KEY}\r",
        "sk_live_ SECRET123",
        f"Basic {KEY}",
        f"{KEY}\x00",
        f"{KEY}\x7f",
        "sk_live_SECRET\u00a0123",  # a no-break space from a web page
        "sk_live_SECRET\u2014123",  # an em dash from a word processor: cannot go in a header
        "sk_live_SECRET\u200b123",  # a zero-width space
    ],
)
def test_malformed_key_is_rejected_without_showing_it(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        api_key({KEY_VARIABLE: bad})
    message = str(caught.value)
    assert KEY_VARIABLE in message
    assert "SECRET" not in message
    assert "SECRET" not in repr(caught.value)


def test_key_is_kept_exactly_and_hidden_in_reprs(tmp_path: Path) -> None:
    odd = "AbC+/xyz==:Q-_.~!"  # base64 and other printable characters, kept as they are
    assert api_key({KEY_VARIABLE: odd}).get_secret_value() == odd
    secret = api_key({KEY_VARIABLE: KEY})
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == KEY
    settings = Settings(input=tmp_path / "in.csv", out=tmp_path / "out", api_key=secret)
    assert KEY not in repr(secret)
    assert KEY not in str(secret)
    assert KEY not in repr(settings)
    assert KEY not in str(settings)


# --- the base URL ----------------------------------------------------------------------------


def test_default_base_url() -> None:
    assert base_url({}) == DEFAULT_BASE_URL == "https://secure.fusebill.com/v1"
    assert base_url({URL_VARIABLE: ""}) == DEFAULT_BASE_URL


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://secure.fusebill.com/v1/", "https://secure.fusebill.com/v1"),
        ("https://stg.fusebill.test/v1//", "https://stg.fusebill.test/v1"),
        ("  https://secure.fusebill.com/v1  ", "https://secure.fusebill.com/v1"),
        ("https://example.com:8443", "https://example.com:8443"),
        ("http://localhost:8080/v1/", "http://localhost:8080/v1"),
        ("http://LOCALHOST:8080/v1", "http://LOCALHOST:8080/v1"),
        ("http://127.0.0.1:5000/v1", "http://127.0.0.1:5000/v1"),
        ("http://127.12.34.56/v1", "http://127.12.34.56/v1"),
        ("http://[::1]:9000/v1", "http://[::1]:9000/v1"),
    ],
)
def test_accepted_base_urls(given: str, expected: str) -> None:
    assert base_url({URL_VARIABLE: given}) == expected


@pytest.mark.parametrize(
    "given",
    [
        "http://example.com",
        "http://secure.fusebill.com/v1",
        "http://128.0.0.1/v1",
        "http://10.0.0.5/v1",
        "http://0.0.0.0:8080/v1",
        "http://localhost.evil.test/v1",
        "http://127.0.0.1.evil.test/v1",
        "http://localhost@evil.test/v1",
        "ftp://secure.fusebill.com/v1",
        "secure.fusebill.com/v1",
        "https://",
        "https:///v1",
        "https://example.com:99999/v1",
        "https://[::1/v1",
    ],
)
def test_rejected_base_urls(given: str) -> None:
    with pytest.raises(ConfigError, match=URL_VARIABLE):
        base_url({URL_VARIABLE: given})


def test_plain_http_message_says_https_is_needed() -> None:
    with pytest.raises(ConfigError, match="https://"):
        base_url({URL_VARIABLE: "http://example.com"})


# --- credentials, queries and fragments (contract v3) ----------------------------------------


@pytest.mark.parametrize(
    ("given", "shown", "what"),
    [
        ("http://annie:S3cr3t@127.0.0.1/v1", "http://[redacted]@127.0.0.1/v1", "credentials"),
        ("https://annie:S3cr3t@secure.fusebill.com/v1", "https://[redacted]@secure", "credentials"),
        ("https://S3cr3t@secure.fusebill.com/v1", "https://[redacted]@secure", "credentials"),
        ("https://:S3cr3t@secure.fusebill.com/v1", "https://[redacted]@secure", "credentials"),
        ("annie:S3cr3t@secure.fusebill.com/v1", "[redacted]@secure.fusebill.com/v1", "credentials"),
        ("https://annie:S3#cr3t@h:99999/v1", "https://[redacted]@h:99999/v1", "credentials"),
        ("https://annie:S3/cr3t@host/v1", "https://[redacted]@host/v1", "credentials"),
        ("https://secure.fusebill.com/v1?k=S3cr3t", "https://secure.fusebill.com/v1", "query"),
        ("https://secure.fusebill.com/v1?", "https://secure.fusebill.com/v1", "query"),
        ("https://secure.fusebill.com/v1#S3cr3t", "https://secure.fusebill.com/v1", "fragment"),
        ("http://127.0.0.1:9/v1/?S3cr3t#c", "http://127.0.0.1:9/v1", "query (?…) or a fragment"),
    ],
)
def test_base_url_with_credentials_query_or_fragment_is_refused(
    given: str, shown: str, what: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        base_url({URL_VARIABLE: given})
    text = str(caught.value)
    assert text.startswith(f"{URL_VARIABLE} must be the API's address alone, without")
    assert shown in text and what in text and "\n" not in text
    assert "S3" not in text and "cr3t" not in text and "annie" not in text
    assert ("the only credential sent" in text) == ("@" in given)


def test_every_base_url_message_hides_the_password() -> None:
    for url in ("http://u:pr0xyPW@example.com/v1", "ftp://u:pr0xyPW@h/v1", "https://u:pr0xyPW@"):
        with pytest.raises(ConfigError) as caught:
            base_url({URL_VARIABLE: url})
        assert PASSWORD not in str(caught.value)


# --- proxy URLs from .env (the rules themselves: tests/fusebill/test_proxies.py) ---------------


def test_a_bad_proxy_in_dotenv_stops_a_live_command_only(tmp_path: Path) -> None:
    from batch_latch.cli import build_parser

    (tmp_path / ".env").write_text(
        f"{KEY_VARIABLE}={KEY}\nHTTPS_PROXY=http://puser:pr0xyPW@127.0.0.1:99999\n",
        encoding="utf-8",
    )
    parser = build_parser(sandbox_options=False)
    with pytest.raises(ConfigError, match=r"^HTTPS_PROXY ") as caught:
        settings_from(parser.parse_args(["run", str(tmp_path / "in.csv")]), "run")
    assert PASSWORD not in str(caught.value)
    chosen = settings_from(parser.parse_args(["run", str(tmp_path / "in.csv"), "--dry-run"]), "run")
    assert not chosen.sends  # a dry run sends nothing: no proxy to check


# --- options, defined once -------------------------------------------------------------------


def _parser(command: str) -> argparse.ArgumentParser:
    from batch_latch.cli import build_parser

    parser = build_parser(sandbox_options=False)
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]  # type: ignore[no-any-return]
    raise AssertionError("no subcommands")


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--")}


@pytest.mark.parametrize("command", ["run", "plan", "undo", "status"])
def test_every_option_is_registered_for_exactly_its_commands(command: str) -> None:
    flags = _flags(_parser(command))
    for option in OPTIONS:
        assert (option.flag in flags) == (command in option.commands), (option.flag, command)


def test_pace_options_apply_to_run_plan_and_undo() -> None:
    pace = {"--rate", "--workers", "--max-attempts", "--timeout", "--max-requests"}
    for command in ("run", "plan", "undo"):
        assert pace <= _flags(_parser(command))
    assert not pace & _flags(_parser("status"))


def test_every_option_has_a_settings_field_and_a_help_line() -> None:
    names = {f.name for f in dataclasses.fields(Settings)}
    for option in OPTIONS:
        assert option.help.strip(), option.flag
        assert option.dest in names or option.dest == "no_progress", option.flag


def test_the_defaults_are_the_contracts_and_every_owner_agrees() -> None:
    from batch_latch.reports.writer import Summary

    contract = {"rate": 10.0, "workers": 8, "max_attempts": 5, "timeout": 30.0, "read_batch": 100}
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    flags = {o.dest: o.default for o in OPTIONS}
    for name, value in contract.items():
        assert fields[name] == value and flags[name] == value, name
    assert str(fields["quota_reserve"]) == "10%" and str(flags["quota_reserve"]) == "10%"
    summary = {f.name: f.default for f in dataclasses.fields(Summary)}
    assert summary["read_batch"] == 100 and summary["quota_reserve"] == "10%"


@pytest.mark.parametrize("command", ["run", "plan", "undo"])
def test_settings_from_builds_every_field_by_name(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    monkeypatch.setenv(URL_VARIABLE, "http://127.0.0.1:9/v1")
    given: dict[str, list[str]] = {
        "--rate": ["2.5"],
        "--workers": ["3"],
        "--max-attempts": ["7"],
        "--timeout": ["4.5"],
        "--max-requests": ["11"],
        "--out": [str(tmp_path / "job")],
        "--sheet": ["Data"],
        "--fusebill-column": ["FB"],
        "--geotab-column": ["GT"],
        "--encoding": ["cp1252"],
        "--delimiter": [";"],
        "--read-batch": ["7"],
        "--quota-reserve": ["250"],
        "--notify": [HOOK],
    }
    parser = _parser(command)
    flags = _flags(parser)
    words = [command, str(tmp_path / ("in.csv" if command != "undo" else "job"))]
    for option in OPTIONS:
        if option.flag not in flags or option.flag in ("--dry-run", "--plan"):
            continue
        words += [option.flag, *given.get(option.flag, [])]
    from batch_latch.cli import build_parser

    args = build_parser(sandbox_options=False).parse_args(words)
    chosen = settings_from(args, command)
    expected = {
        "rate": 2.5,
        "workers": 3,
        "max_attempts": 7,
        "timeout": 4.5,
        "max_requests": 11,
        "sheet": "Data",
        "fusebill_column": "FB",
        "geotab_column": "GT",
        "encoding": "cp1252",
        "delimiter": ";",
        "read_batch": 7,
        "quota_reserve": QuotaReserve("250", count=250),
    }
    for option in OPTIONS:
        skipped = ("no_progress", "dry_run", "out", "notify", "plan")
        if option.flag not in flags or option.dest in skipped:
            continue
        want = expected.get(option.dest, True)  # a switch given is True
        assert getattr(chosen, option.dest) == want, option.flag
    assert chosen.notify is not None and chosen.notify.get_secret_value() == HOOK
    assert "T0KEN" not in repr(chosen)
    assert chosen.out == tmp_path / "job"
    assert chosen.progress is False  # --no-progress
    assert chosen.api_key is not None and chosen.api_key.get_secret_value() == KEY
    assert chosen.base_url == "http://127.0.0.1:9/v1"
    assert chosen.kind.value == command


HOOK = "http://127.0.0.1:9/hooks/T0KEN-secret"


def _chosen(words: list[str]) -> Settings:
    from batch_latch.cli import build_parser

    args = build_parser(sandbox_options=False).parse_args(words)
    return settings_from(args, words[0])


def test_the_notify_url_comes_from_the_option_or_the_variable_checked_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sheet = str(tmp_path / "in.csv")
    monkeypatch.delenv(NOTIFY_VARIABLE, raising=False)
    assert _chosen(["run", sheet, "--dry-run"]).notify is None
    monkeypatch.setenv(NOTIFY_VARIABLE, HOOK)
    found = _chosen(["run", sheet, "--dry-run"]).notify
    assert found is not None and found.get_secret_value() == HOOK
    other = "https://hooks.example.com/services/X"
    found = _chosen(["run", sheet, "--dry-run", "--notify", other]).notify
    assert found is not None and found.get_secret_value() == other  # the option wins
    monkeypatch.setenv(NOTIFY_VARIABLE, "http://hooks.example.com/T0KEN-secret")
    with pytest.raises(ConfigError, match="https://") as refused:
        _chosen(["run", sheet, "--dry-run"])
    assert "T0KEN" not in str(refused.value)
    monkeypatch.setenv(NOTIFY_VARIABLE, "  ")  # empty: unset
    assert _chosen(["run", sheet, "--dry-run"]).notify is None


@pytest.mark.parametrize("bad", ["0", "-5", "12a", "1.5", "9223372036854775808", "\uff11\uff12"])
def test_status_customer_takes_a_fusebill_id(bad: str, tmp_path: Path) -> None:
    from batch_latch.cli import build_parser

    assert _chosen(["status", str(tmp_path), "--customer", "2000254"]).customer == 2000254
    with pytest.raises(SystemExit) as stopped:
        build_parser(sandbox_options=False).parse_args(["status", str(tmp_path), "--customer", bad])
    assert stopped.value.code == 2


def test_settings_from_defaults_out_next_to_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch_latch.cli import build_parser

    args = build_parser(sandbox_options=False).parse_args(
        ["run", str(tmp_path / "sheet.xlsx"), "--dry-run"]
    )
    chosen = settings_from(args, "run")
    assert chosen.out == tmp_path / "sheet-latch"
    assert chosen.kind.value == "dry-run" and chosen.api_key is None and not chosen.sends
    assert (chosen.rate, chosen.workers, chosen.max_attempts, chosen.timeout) == (10.0, 8, 5, 30.0)


@pytest.mark.parametrize("where", ["", "runs/20261207T101500Z-run"])
def test_a_report_fed_back_from_a_job_folder_defaults_out_to_that_job(
    tmp_path: Path, where: str
) -> None:
    from batch_latch.cli import build_parser

    job = tmp_path / "mapping-latch"
    folder = job / where
    folder.mkdir(parents=True)
    (job / "job.db").write_bytes(b"")  # a job folder: its ledger is there
    args = build_parser(sandbox_options=False).parse_args(
        ["run", str(folder / "failed.csv"), "--dry-run"]
    )
    assert settings_from(args, "run").out == job


def test_a_sheet_beside_no_job_still_gets_its_own_job_folder(tmp_path: Path) -> None:
    from batch_latch.cli import build_parser

    (tmp_path / "runs" / "x").mkdir(parents=True)  # a "runs" folder that is not in a job
    args = build_parser(sandbox_options=False).parse_args(
        ["run", str(tmp_path / "runs" / "x" / "failed.csv"), "--dry-run"]
    )
    assert settings_from(args, "run").out == tmp_path / "runs" / "x" / "failed-latch"


def test_a_live_command_without_a_key_is_a_config_error(tmp_path: Path) -> None:
    from batch_latch.cli import build_parser

    args = build_parser(sandbox_options=False).parse_args(["plan", str(tmp_path / "in.csv")])
    with pytest.raises(ConfigError, match=KEY_VARIABLE):
        settings_from(args, "plan")


@pytest.mark.parametrize(
    ("given", "accepted"), [("1", True), ("500", True), ("501", False), ("0", False)]
)
def test_read_batch_takes_the_contracts_1_to_500(given: str, accepted: bool) -> None:
    from batch_latch.cli import build_parser

    parser = build_parser(sandbox_options=False)
    if accepted:
        args = parser.parse_args(["plan", "in.csv", "--read-batch", given])
        assert args.read_batch == int(given)
    else:
        with pytest.raises(SystemExit) as refused:
            parser.parse_args(["plan", "in.csv", "--read-batch", given])
        assert refused.value.code == 2
