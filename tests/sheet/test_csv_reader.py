"""CSV input v2: UTF-16, damaged UTF-8, ``sep=``, NUL and Ctrl-Z tails, overrides, title
rows above the header, wider aliases and fed-back reports. Files are written as bytes here."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest

from batch_latch.errors import ConfigError, InputError
from batch_latch.sheet import loader, validate


def load(tmp_path: Path, data: bytes, **kwargs: Any) -> loader.Sheet:
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    return loader.load(path, **kwargs)


def error(tmp_path: Path, data: bytes, **kwargs: Any) -> str:
    with pytest.raises((InputError, ConfigError)) as info:
        load(tmp_path, data, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_tab_delimited(tmp_path: Path, codec: str) -> None:
    """Excel's "Unicode Text": UTF-16 with a BOM, tab between cells."""
    text = "fusebillId\tgeotabId\tNom\r\n1\tZürich-Ω\tCafé\r\n"
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    sheet = load(tmp_path, bom + text.encode(codec))
    assert sheet.geotab.to_pylist() == ["Zürich-Ω"]
    assert sheet.extras["Nom"].to_pylist() == ["Café"]


def test_utf8_with_one_bad_byte_is_an_error_naming_the_line(tmp_path: Path) -> None:
    data = "fusebillId,geotabId\r\n1,Zürich\r\n2,ok\r\n".encode() + b"3,caf\xe9\r\n"
    message = error(tmp_path, data)
    assert "line 4" in message and "UTF-8" in message


def test_bad_utf8_read_as_cp1252_when_the_user_says_so(tmp_path: Path) -> None:
    data = "fusebillId,geotabId\r\n1,Zürich\r\n".encode() + b"3,caf\xe9\r\n"
    sheet = load(tmp_path, data, encoding="cp1252")
    assert sheet.geotab.to_pylist() == ["ZÃ¼rich", "café"]  # what the user asked for


def test_no_multibyte_utf8_and_high_bytes_is_cp1252(tmp_path: Path) -> None:
    sheet = load(tmp_path, b"fusebillId;geotabId\r\n1;caf\xe9 \x80\r\n")
    assert sheet.geotab.to_pylist() == ["café €"]


def test_unknown_encoding_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load(tmp_path, b"fusebillId,geotabId\r\n1,2\r\n", encoding="no-such-codec")


def test_sep_line_is_honoured_and_not_a_row(tmp_path: Path) -> None:
    # The header holds commas inside names; only sep=; says the delimiter is ';'.
    sheet = load(tmp_path, b"sep=;\r\nfusebillId;geotabId;a,b\r\n1;x,y;3\r\n")
    assert (sheet.header_row, sheet.rows.to_pylist()) == (1, [2])
    assert sheet.geotab.to_pylist() == ["x,y"]
    assert list(sheet.extras) == ["a,b"]


@pytest.mark.parametrize(
    "tail",
    [b"\x00" * 37, b"\x1a", b"\x1a\x00\x00", b"\r\n\x1a"],
    ids=["nul", "ctrl-z", "both", "eol-z"],
)
def test_nul_padding_and_ctrl_z_tail_make_no_row(tmp_path: Path, tail: bytes) -> None:
    sheet = load(tmp_path, b"fusebillId,geotabId\r\n1,a\r\n2,b" + tail)
    assert sheet.geotab.to_pylist() == ["a", "b"]


@pytest.mark.parametrize(("given", "char"), [("tab", "\t"), ("|", "|"), (";", ";"), (",", ",")])
def test_delimiter_override(tmp_path: Path, given: str, char: str) -> None:
    data = f"fusebillId{char}geotabId{char}x\r\n1{char}a{char}b\r\n".encode()
    sheet = load(tmp_path, data, delimiter=given)
    assert (sheet.geotab.to_pylist(), list(sheet.extras)) == (["a"], ["x"])


def test_bad_delimiter_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load(tmp_path, b"fusebillId,geotabId\r\n1,2\r\n", delimiter="ab")


def test_pipe_detected(tmp_path: Path) -> None:
    sheet = load(tmp_path, b"fusebillId|geotabId\r\n1|a,b\r\n")
    assert sheet.geotab.to_pylist() == ["a,b"]


def test_title_rows_above_the_header(tmp_path: Path) -> None:
    data = (
        b"Customer export\r\n\r\nMay 2024,,\r\n"
        b"Fusebill Customer Number,Geotab Reseller ID,n\r\n5,g,x\r\n"
    )
    sheet = load(tmp_path, data)
    found = (sheet.header_row, sheet.rows.to_pylist(), sheet.geotab.to_pylist())
    assert found == (4, [5], ["g"])


def test_header_beyond_twenty_non_blank_rows_is_not_found(tmp_path: Path) -> None:
    titles = b"".join(b"title %d\r\n" % i for i in range(20))
    message = error(tmp_path, titles + b"fusebillId,geotabId\r\n1,2\r\n")
    assert "20" in message


@pytest.mark.parametrize(
    ("fusebill", "geotab"),
    [
        ("Fusebill ID", "Geotab ID"),
        ("FUSEBILL CUSTOMER ID", "geotab reseller id"),
        ("fusebill_customer_number", "Geotab-Reseller-Customer-ID"),
        ("fusebill.id", "Geotab Customer ID"),
    ],
)
def test_wider_aliases(tmp_path: Path, fusebill: str, geotab: str) -> None:
    sheet = load(tmp_path, f"{fusebill},{geotab}\r\n1,2\r\n".encode())
    assert (sheet.fusebill_header, sheet.geotab_header) == (fusebill, geotab)


# --- fed-back reports -------------------------------------------------------------------------


REPORT_HEADER = (
    "row,fusebillId,geotabId,status,http_status,attempts,message,error_key,change,"
    "previous_geotabId,finished_at,Notes,input_status,input_input_x"
)


def test_fed_back_failed_csv_keeps_original_rows_and_names(tmp_path: Path) -> None:
    data = (
        "\ufeff" + REPORT_HEADER + "\r\n"
        "7,123,g7,invalid,,0,bad,invalid_geotab_id,,,,n7,open,q\r\n"
        "12,124,'=g12,failed,500,5,boom,,,,2024-01-01,n12,closed,r\r\n"
        ",125,g-new,,,,,,,,,added,,\r\n"
    ).encode()
    sheet = load(tmp_path, data)
    assert sheet.fed_back
    assert sheet.rows.to_pylist() == [7, 12, 4]  # an added row keeps this file's row number
    assert sheet.geotab.to_pylist() == ["g7", "=g12", "g-new"]
    # Tool columns dropped; input_status was the input's own "status"; input_input_x is
    # not a name we made (x is not ours), so it stays as it is.
    assert list(sheet.extras) == ["Notes", "status", "input_input_x"]
    assert sheet.extras["status"].to_pylist() == ["open", "closed", ""]


def test_round_trip_names_do_not_nest(tmp_path: Path) -> None:
    from batch_latch.reports.writer import output_names

    first = load(tmp_path, b"fusebillId,geotabId,status,row\r\n1,a,open,r1\r\n")
    written = output_names(list(first.extras))
    assert written == ["input_status", "input_row"]
    header = REPORT_HEADER.rsplit(",Notes", 1)[0] + "," + ",".join(written)
    again = load(tmp_path, (header + "\r\n2,1,a,valid,,0,,,,,,open,r1\r\n").encode())
    assert list(again.extras) == ["status", "row"]
    assert output_names(list(again.extras)) == written
    assert again.rows.to_pylist() == [2]


def test_invisible_characters_in_csv_geotab_ids(tmp_path: Path) -> None:
    sheet = load(tmp_path, "fusebillId,geotabId\r\n1,GT-\u200b55558\r\n2,\u202eabc\r\n".encode())
    verdicts = validate.validate(sheet)
    assert verdicts.status.to_pylist() == ["invalid", "invalid"]
    assert verdicts.message.to_pylist() == [
        "geotabId contains an invisible character U+200B (ZERO WIDTH SPACE) at position 4",
        "geotabId contains an invisible character U+202E (RIGHT-TO-LEFT OVERRIDE) at position 1",
    ]
