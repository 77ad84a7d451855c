"""Issue 25 item 3: honest first lines (each pinned as a literal; each failed before)."""

from __future__ import annotations

import logging
from pathlib import Path

import openpyxl
import pytest

from batch_latch import cli
from batch_latch.environment import environment
from batch_latch.errors import ConfigError, InputError
from batch_latch.fusebill.answers import Meaning, Reply, ReplyError, classify_read
from batch_latch.fusebill.listing import classify_list
from batch_latch.send.estimate import Pace, how_long, seconds_for
from batch_latch.settings import KEY_VARIABLE, URL_VARIABLE
from batch_latch.sheet import loader

LIST_URL = (
    "https://api.example.com/v1/customers?query=id:"
    + ",".join(str(1_000_000 + i) for i in range(100))
    + "&pageSize=100&pageNumber=0"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)


def test_a_tls_failure_names_the_base_url_not_the_list_url() -> None:
    reply = Reply(
        None, error=ReplyError.TLS, detail="certificate verify failed: expired", url=LIST_URL
    )
    answer = classify_list(reply, [1_000_000])
    assert answer.verdict.kind is Meaning.STOP
    assert answer.verdict.message.startswith(
        "TLS certificate check failed for https://api.example.com/v1: "
    )
    assert "query=" not in answer.verdict.message


def test_wrong_version_number_says_the_server_may_speak_http() -> None:
    detail = "TLS handshake failed: [SSL: WRONG_VERSION_NUMBER] wrong version number (x)"
    reply = Reply(
        None, error=ReplyError.TLS, detail=detail, url="https://127.0.0.1:8080/v1/customers/5"
    )
    verdict, _ = classify_read(reply, 5)
    assert verdict.message == (
        "TLS handshake with https://127.0.0.1:8080/v1 failed (WRONG_VERSION_NUMBER): the "
        "server may speak http, not https; check FUSEBILL_BASE_URL's scheme and port"
    )


def test_a_malformed_env_is_one_line_naming_the_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("# key\nFUSEBILL_API_KEY=abc\nnot a line\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING), pytest.raises(ConfigError) as caught:
        environment(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / '.env'} line 3 is not NAME=value: write it as NAME=value, a comment "
        "starting with #, or a blank line (its text is not shown: it may hold the key)"
    )
    assert not caplog.records
    assert capsys.readouterr().err == ""


def test_an_unknown_delimiter_is_refused_at_argument_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.csv").write_text("fusebillId,geotabId\n1,A\n", encoding="utf-8")
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "in.csv", "--dry-run", "--delimiter", "x"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "argument --delimiter: expected , ; tab or |, got 'x'" in err
    assert not (tmp_path / "in-latch").exists()


def test_no_arguments_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: batch-latch ")
    assert "FUSEBILL_API_KEY" in err and "exit codes:" in err


def test_excels_lock_file_is_named_and_points_to_the_workbook(tmp_path: Path) -> None:
    lock = tmp_path / "~$book.xlsx"
    lock.write_bytes(b"\x07owner\x00" * 10)
    with pytest.raises(InputError) as caught:
        loader.load(lock)
    assert str(caught.value) == (
        "~$book.xlsx is Excel's lock file (Excel keeps it while the workbook is open), not a "
        f"workbook: give {tmp_path / 'book.xlsx'} instead"
    )


def test_a_first_sheet_without_id_columns_names_the_sheets(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Notes"
    first.append(["hello", "world"])
    ids = book.create_sheet("Ids")
    ids.append(["fusebillId", "geotabId"])
    ids.append(["12717595", "G1"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    with pytest.raises(InputError) as caught:
        loader.load(path)
    assert str(caught.value).endswith(
        "; that is the first sheet of book.xlsx, whose sheets are 'Notes', 'Ids': choose the "
        "one with the ids with --sheet NAME"
    )


def test_an_estimate_counts_what_is_left_of_today() -> None:
    # testdrive-like: 500 a day, 50 kept back; 450 left today, the day resets in 16 h.
    pace = Pace(10.0, 600, 500, 50, left_today=500, day_resets_in=16 * 3600.0)
    assert seconds_for(502, pace) == pytest.approx(16 * 3600 + 52 / 10)
    assert how_long(502, pace) == (
        "about 0.7 days at this account's limits (600 a minute, 500 a day less 50 left to "
        "other integrations)"
    )


def test_an_estimate_that_does_not_fit_today_is_not_minutes() -> None:
    # 118 requests, 20 left today: not "about 2 min" followed by "Pausing 16.0 h".
    pace = Pace(1.0, 1000, 180_000, 0, left_today=20, day_resets_in=16 * 3600.0)
    assert how_long(118, pace).startswith("about 0.7 days at this account's limits")


def test_a_daily_bound_estimate_is_said_in_days() -> None:
    pace = Pace(1000.0, 1000, 100_000)
    assert how_long(120_000, pace).startswith("about 1.0 days")
