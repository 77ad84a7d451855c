"""The command line: help for ops on every option, one-line errors with the right exit codes,
and an internal error that never shows a traceback or the key."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import pytest

from batch_latch import cli
from batch_latch.commands import status
from batch_latch.errors import NotAJob
from batch_latch.settings import KEY_VARIABLE, URL_VARIABLE
from tests.conftest import Helpers

KEY = "sk_live_CLI_SECRET_42"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the repository


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


COMMANDS = list(cli.COMMANDS)


def test_every_command_is_listed() -> None:
    assert set(subcommands(cli.build_parser())) == set(COMMANDS)
    assert set(COMMANDS) >= {"run", "plan", "undo", "status", "demo", "sandbox"}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_has_a_line_for_every_option(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = subcommands(cli.build_parser())[command]
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args([command, "--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: batch-latch " + command)
    for action in options(parser):
        assert action.help and action.help.strip(), action.option_strings
        for flag in action.option_strings:
            assert flag in text, flag
    # Positional arguments are explained too.
    for action in parser._actions:
        if not action.option_strings:
            assert action.help, action.dest


def test_top_level_help_is_written_for_ops(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert "FUSEBILL_API_KEY" in text
    for command, (line, _) in cli.COMMANDS.items():
        assert command in text
        assert line.split()[0] in text


@pytest.mark.parametrize(
    "words",
    [
        ["run"],  # no INPUT
        ["run", "in.csv", "--rate", "0"],
        ["run", "in.csv", "--workers", "many"],
        ["plan", "in.csv", "--fresh"],  # a run-only option
        ["launch"],
    ],  # no arguments at all prints the help (tests/test_first_lines.py)
    ids=["no-input", "rate-0", "workers-text", "plan-fresh", "unknown-command"],
)
def test_a_usage_error_is_one_line_and_exit_2(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(words)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("batch-latch") and "error:" in lines[0]
    assert "--help" in lines[0]


def test_a_problem_the_user_can_fix_is_one_line_with_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["status", str(tmp_path / "not-a-job")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("batch-latch: error: ")
    assert "not a batch-latch job folder" in err


def test_a_missing_key_is_one_line_exit_2_and_nothing_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.csv").write_text("fusebillId,geotabId\n1,A\n", encoding="utf-8")
    code = cli.main(["run", str(tmp_path / "in.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and KEY_VARIABLE in err
    assert not (tmp_path / "in-latch").exists()


def test_an_internal_error_is_exit_70_one_line_and_its_traceback_kept_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no run folder: the temp folder

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError(f"header Authorization: Basic {KEY} went wrong\nsecond line")

    monkeypatch.setattr(status, "show", broken)
    code = cli.main(["status", str(tmp_path)])
    assert code == 70
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("batch-latch: internal error (please report it, with that file): ")
    assert "RuntimeError:" in lines[0] and "went wrong" in lines[0]
    assert KEY not in captured.err + captured.out
    assert "Traceback" not in captured.err and "second line" not in captured.err
    kept = list(tmp_path.glob("batch-latch-error-*.txt"))
    assert len(kept) == 1 and str(kept[0]) in lines[0]
    text = kept[0].read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "in broken" in text
    assert "second line" in text and KEY not in text


def test_traceback_flag_lets_an_internal_error_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(status, "show", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["status", str(tmp_path), "--traceback"])


def test_batch_latch_debug_lets_an_internal_error_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(status, "show", broken)
    monkeypatch.setenv("BATCH_LATCH_DEBUG", "1")
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["status", str(tmp_path)])


def test_a_bug_inside_a_command_keeps_its_traceback_in_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from batch_latch.reports import writer

    (tmp_path / "in.csv").write_text("fusebillId,geotabId\n1,A\n", encoding="utf-8")
    monkeypatch.setenv(KEY_VARIABLE, KEY)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError(f"reports broke near {KEY}")

    monkeypatch.setattr(writer, "write_reports", broken)
    code = cli.main(["run", str(tmp_path / "in.csv"), "--dry-run", "--no-progress"])
    assert code == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and KEY not in err
    kept = list((tmp_path / "in-latch" / "runs").glob("*/error.txt"))
    assert len(kept) == 1 and str(kept[0]) in err
    text = kept[0].read_text(encoding="utf-8")
    assert "ZeroDivisionError" in text and "Traceback (most recent call last)" in text
    assert KEY not in text


def test_the_key_in_a_dotenv_is_redacted_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text(f"{KEY_VARIABLE}={KEY}\n", encoding="utf-8")

    def broken(*args: Any, **kwargs: Any) -> int:
        raise ValueError(f"odd value {KEY!r}")

    monkeypatch.setattr(status, "show", broken)
    assert cli.main(["status", str(tmp_path)]) == 70
    err = capsys.readouterr().err
    assert KEY not in err and "odd value" in err


def test_a_proxy_password_in_an_error_line_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "Pr0xy-Pa55word"
    monkeypatch.setenv("HTTPS_PROXY", f"http://ops:{password}@proxy.corp:3128")

    def broken(*args: Any, **kwargs: Any) -> int:
        raise NotAJob(f"odd: proxy said {password} was wrong")

    monkeypatch.setattr(status, "show", broken)
    assert cli.main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert password not in err and "proxy said" in err


def test_ctrl_c_outside_the_run_is_exit_130_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(status, "show", interrupted)
    assert cli.main(["status", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "batch-latch: interrupted\n"


def test_the_real_process_exit_codes(tmp_path: Path, helpers: type[Helpers]) -> None:
    version, usage = helpers.run_cli_many(
        [["--version"], ["run", "--rate", "-1", "in.csv"]], cwd=tmp_path
    )
    assert version.returncode == 0 and version.stdout.startswith("batch-latch ")
    assert usage.returncode == 2
    assert len(usage.stderr.splitlines()) == 1 and "Traceback" not in usage.stderr
