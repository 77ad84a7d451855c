"""The loader against real files: encodings, delimiters, headers, row numbers, XLSX, errors."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batch_latch.errors import BatchLatchError, ConfigError, InputError
from batch_latch.sheet import loader, validate
from batch_latch.sheet.loader import Sheet
from tests.conftest import Helpers


def values(sheet: Sheet) -> dict[str, Any]:
    return {
        "rows": sheet.rows.to_pylist(),
        "fusebill": sheet.fusebill.to_pylist(),
        "geotab": sheet.geotab.to_pylist(),
        "extras": {name: column.to_pylist() for name, column in sheet.extras.items()},
    }


def load_bytes(tmp_path: Path, data: bytes, name: str = "input.csv", **kwargs: Any) -> Sheet:
    path = tmp_path / name
    path.write_bytes(data)
    return loader.load(path, **kwargs)


def load_error(path: Path, **kwargs: Any) -> BatchLatchError:
    with pytest.raises((InputError, ConfigError)) as info:
        loader.load(path, **kwargs)
    message = str(info.value)
    assert message.strip()
    assert "\n" not in message and "\r" not in message, repr(message)
    assert info.value.exit_code == 2
    return info.value


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
def test_utf8_with_and_without_bom(tmp_path: Path, helpers: type[Helpers], bom: bool) -> None:
    # The BOM sits before an extra column's name: it must not end up in that name.
    path = helpers.write_csv(
        tmp_path / "in.csv",
        [["Account", "fusebillId", "geotabId"], ["Café Crème", "1", "Zürich-Ω"]],
        bom=bom,
    )
    sheet = loader.load(path)
    assert values(sheet) == {
        "rows": [2],
        "fusebill": ["1"],
        "geotab": ["Zürich-Ω"],
        "extras": {"Account": ["Café Crème"]},
    }


def test_bom_before_the_fusebill_header(tmp_path: Path) -> None:
    sheet = load_bytes(tmp_path, b"\xef\xbb\xbffusebillId,geotabId\r\n1,2\r\n")
    assert sheet.fusebill.to_pylist() == ["1"]
    assert "\ufeff" not in sheet.fusebill_header


def test_windows_1252(tmp_path: Path) -> None:
    # 0xE9 is "é", 0x80 is "€", 0xE8 is "è" in Windows-1252; none is valid UTF-8 here.
    data = b"fusebillId;geotabId;Soci\xe9t\xe9\r\n1;caf\xe9;Cr\xe8me \x80\r\n2;plain;x\r\n"
    sheet = load_bytes(tmp_path, data)
    assert values(sheet) == {
        "rows": [2, 3],
        "fusebill": ["1", "2"],
        "geotab": ["café", "plain"],
        "extras": {"Société": ["Crème €", "x"]},
    }


def test_windows_1252_ragged_file_takes_the_tolerant_reader(tmp_path: Path) -> None:
    data = b"fusebillId,geotabId\r\n1,caf\xe9\r\n\r\n2,na\xefve,extra\r\n"
    sheet = load_bytes(tmp_path, data)
    assert values(sheet) == {
        "rows": [2, 4],
        "fusebill": ["1", "2"],
        "geotab": ["café", "naïve"],
        "extras": {"column_3": ["", "extra"]},
    }


@pytest.mark.parametrize("ragged", [False, True])
def test_windows_1252_undefined_bytes_do_not_crash(tmp_path: Path, ragged: bool) -> None:
    # 0x81 0x8D 0x8F 0x90 0x9D have no Windows-1252 character; Python's codec refuses them.
    # They load as the matching C1 control characters (as browsers decode them), so the
    # geotabId is invalid (a control character) rather than silently "repaired".
    tail = b"2\r\n" if ragged else b""
    data = b"fusebillId,geotabId\r\n1,a\x81\x8d\x8f\x90\x9db\xe9\r\n" + tail
    sheet = load_bytes(tmp_path, data)
    assert sheet.geotab.to_pylist()[0] == "a\x81\x8d\x8f\x90\x9dbé"
    assert validate.validate(sheet).status.to_pylist()[0] == "invalid"


def test_utf8_file_whose_ragged_row_mentions_utf8_stays_utf8(tmp_path: Path) -> None:
    # A parse error message quoting the row text must not be mistaken for an encoding error.
    data = "fusebillId,geotabId\r\n1,é\r\n2,UTF8,invalid UTF8 data\r\n".encode()
    sheet = load_bytes(tmp_path, data)
    assert sheet.geotab.to_pylist() == ["é", "UTF8"]


def test_bom_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xef\xbb\xbffusebillId,geotabId\r\n1,caf\xe9\r\n")
    error = load_error(path)
    assert "UTF-8" in str(error)


# --- delimiters -----------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_delimiter_detected(tmp_path: Path, helpers: type[Helpers], delimiter: str) -> None:
    # Cells hold the other delimiters, so a wrong guess would split them.
    records = [
        ["Fusebill ID", "Geotab ID", "Notes"],
        ["12717595", "a,b;c", "x;y,z\tw"],
        ["671201", "1234", ""],
    ]
    path = helpers.write_csv(tmp_path / "in.csv", records, delimiter=delimiter)
    sheet = loader.load(path)
    assert values(sheet) == {
        "rows": [2, 3],
        "fusebill": ["12717595", "671201"],
        "geotab": ["a,b;c", "1234"],
        "extras": {"Notes": ["x;y,z\tw", ""]},
    }


def test_semicolon_file_with_commas_in_header_extra(tmp_path: Path) -> None:
    data = b"Name, first;fusebillId;geotabId\r\nA, B;1;2\r\n"
    sheet = load_bytes(tmp_path, data)
    assert values(sheet)["extras"] == {"Name, first": ["A, B"]}


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n"], ids=["lf", "cr", "crlf"])
def test_line_endings(tmp_path: Path, newline: str) -> None:
    data = newline.join(["fusebillId,geotabId", "1,a", "2,b", ""]).encode()
    assert values(load_bytes(tmp_path, data))["geotab"] == ["a", "b"]


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fusebill_name", "geotab_name"),
    [
        ("fusebillId", "geotabId"),
        ("FUSEBILLID", "GEOTABID"),
        ("Fusebill ID", "Geotab ID"),
        ("fusebill_id", "geotab-id"),
        ("  Fusebill - Id  ", " GEOTAB__ID "),
        ("Fusebill Customer ID", "Geotab Reseller Customer ID"),
        ("fusebill_customer_id", "geotab-reseller-customer-id"),
        ("FusebillCustomerId", "GeotabResellerCustomerID"),
        ("fusebill\tid", "geotab id"),
    ],
)
def test_header_aliases(
    tmp_path: Path, helpers: type[Helpers], fusebill_name: str, geotab_name: str
) -> None:
    path = helpers.write_csv(
        tmp_path / "in.csv", [["Other", geotab_name, fusebill_name], ["o", "g1", "42"]]
    )
    sheet = loader.load(path)
    assert sheet.fusebill.to_pylist() == ["42"]
    assert sheet.geotab.to_pylist() == ["g1"]
    assert sheet.fusebill_header == fusebill_name
    assert sheet.geotab_header == geotab_name
    assert list(sheet.extras) == ["Other"]


@pytest.mark.parametrize(
    "header",
    [
        ["Fusebill", "geotabId"],
        ["fusebillIds", "geotabId"],
        ["Customer ID", "Geotab ID"],
        ["Fusebill Customer", "geotabId"],
    ],
)
def test_near_miss_headers_are_not_guessed(
    tmp_path: Path, helpers: type[Helpers], header: list[str]
) -> None:
    path = helpers.write_csv(tmp_path / "in.csv", [header, ["1", "2"]])
    error = load_error(path)
    assert "fusebillId" in str(error)
    assert "--fusebill-column" in str(error)


def test_geotab_column_not_found(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(tmp_path / "in.csv", [["fusebillId", "Geotab"], ["1", "2"]])
    error = load_error(path)
    assert "geotabId" in str(error) and "--geotab-column" in str(error)
    assert "'Geotab'" in str(error)  # lists the columns it saw


def test_column_overrides(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(
        tmp_path / "in.csv", [["Customer", "Notes", "Reseller"], ["7", "n", "R-1"]]
    )
    load_error(path)  # not found by name
    sheet = loader.load(path, fusebill_column="Customer", geotab_column="Reseller")
    assert values(sheet) == {
        "rows": [2],
        "fusebill": ["7"],
        "geotab": ["R-1"],
        "extras": {"Notes": ["n"]},
    }
    # The override is matched like the aliases: case, spaces, underscores, hyphens ignored.
    loose = loader.load(path, fusebill_column=" customer ", geotab_column="RE-SELLER")
    assert loose.fusebill.to_pylist() == ["7"] and loose.geotab.to_pylist() == ["R-1"]


def test_override_for_one_column_only(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(tmp_path / "in.csv", [["Customer", "geotabId"], ["7", "g"]])
    sheet = loader.load(path, fusebill_column="Customer")
    assert sheet.fusebill.to_pylist() == ["7"] and sheet.geotab.to_pylist() == ["g"]


def test_override_not_found(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(tmp_path / "in.csv", [["fusebillId", "geotabId"], ["1", "2"]])
    error = load_error(path, geotab_column="Reseller ID")
    assert "'Reseller ID'" in str(error) and "--geotab-column" in str(error)


def test_two_candidate_columns_is_an_error(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(
        tmp_path / "in.csv",
        [["Fusebill ID", "fusebill_customer_id", "geotabId"], ["1", "2", "g"]],
    )
    error = load_error(path)
    assert "'Fusebill ID'" in str(error) and "'fusebill_customer_id'" in str(error)
    # Naming one of them settles it; the other is carried as an ordinary column.
    sheet = loader.load(path, fusebill_column="fusebill_customer_id")
    assert sheet.fusebill.to_pylist() == ["2"]
    assert values(sheet)["extras"] == {"Fusebill ID": ["1"]}


def test_two_geotab_candidates_is_an_error(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(
        tmp_path / "in.csv", [["fusebillId", "Geotab ID", "GEOTAB-ID"], ["1", "a", "b"]]
    )
    assert "--geotab-column" in str(load_error(path))


def test_same_column_for_both_is_an_error(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(tmp_path / "in.csv", [["fusebillId", "geotabId"], ["1", "2"]])
    load_error(path, fusebill_column="geotabId")


# --- values are text ------------------------------------------------------------------------


def test_every_value_is_text(tmp_path: Path, helpers: type[Helpers]) -> None:
    cells = ["0909909", "00012", "1.0", "1e3", "TRUE", " 5 ", "NaN", "null", "", "1,5", "-0"]
    records = [["fusebillId", "geotabId", "Other"]] + [[c, c, c] for c in cells]
    records.append(["x", "y", "z"])  # keeps the last rows non-blank
    sheet = loader.load(helpers.write_csv(tmp_path / "in.csv", records))
    # The "" row is blank in every column, so it is skipped.
    expected = [c for c in cells if c.strip()] + ["x"]
    assert sheet.fusebill.to_pylist() == expected
    assert sheet.extras["Other"].to_pylist() == [c for c in cells if c.strip()] + ["z"]
    assert str(sheet.fusebill.type) == "string" and sheet.fusebill.null_count == 0


# --- row numbers ----------------------------------------------------------------------------


def test_blank_rows_are_skipped_and_keep_numbering(tmp_path: Path) -> None:
    data = "\r\n".join(
        [
            "fusebillId,geotabId,Notes",  # 1
            "1,a,x",  # 2
            "",  # 3: empty line
            ",,",  # 4: every cell empty
            "2,b,",  # 5
            " , ,\t",  # 6: whitespace only
            '"","",""',  # 7: quoted empties
            "3,c,z",  # 8
            "",
            "",
        ]
    ).encode()
    assert values(load_bytes(tmp_path, data)) == {
        "rows": [2, 5, 8],
        "fusebill": ["1", "2", "3"],
        "geotab": ["a", "b", "c"],
        "extras": {"Notes": ["x", "", "z"]},
    }


def test_comma_only_blank_rows_on_the_fast_path(tmp_path: Path) -> None:
    # No empty lines and no ragged rows: the file is "simple"; numbering must still hold.
    data = b"fusebillId,geotabId\n,\n1,a\n,\n,\n2,b\n"
    assert values(load_bytes(tmp_path, data))["rows"] == [3, 6]


def test_half_blank_rows_are_kept(tmp_path: Path) -> None:
    data = b"fusebillId,geotabId,Notes\n,,only a note\n1,,\n"
    sheet = load_bytes(tmp_path, data)
    assert values(sheet) == {
        "rows": [2, 3],
        "fusebill": ["", "1"],
        "geotab": ["", ""],
        "extras": {"Notes": ["only a note", ""]},
    }


@pytest.mark.parametrize("tolerant", [False, True], ids=["fast", "tolerant"])
def test_quoted_newline_is_one_row(tmp_path: Path, tolerant: bool) -> None:
    lines = [
        "fusebillId,geotabId,Notes",
        '1,"line one\nline two","a\r\nb"',
        '2,b,"x,""quoted"", y"',
        "3,c,d",
    ]
    if tolerant:
        lines.insert(3, "")  # an empty line sends the file through the csv module
    data = ("\r\n".join(lines) + "\r\n").encode()
    sheet = load_bytes(tmp_path, data)
    assert values(sheet) == {
        "rows": [2, 3, 5] if tolerant else [2, 3, 4],
        "fusebill": ["1", "2", "3"],
        "geotab": ["line one\nline two", "b", "c"],
        "extras": {"Notes": ["a\r\nb", 'x,"quoted", y', "d"]},
    }


# --- columns --------------------------------------------------------------------------------


def test_extra_columns_in_order(tmp_path: Path, helpers: type[Helpers]) -> None:
    records = [
        ["Zone", "fusebillId", "Account", "geotabId", "Amount", "Notes"],
        ["z1", "1", "acme", "g1", "0012", "n1"],
        ["z2", "2", "beta", "g2", "1.50", ""],
    ]
    sheet = loader.load(helpers.write_csv(tmp_path / "in.csv", records))
    assert list(sheet.extras) == ["Zone", "Account", "Amount", "Notes"]
    assert values(sheet)["extras"] == {
        "Zone": ["z1", "z2"],
        "Account": ["acme", "beta"],
        "Amount": ["0012", "1.50"],
        "Notes": ["n1", ""],
    }


def test_duplicate_and_nameless_headers_made_unique(tmp_path: Path, helpers: type[Helpers]) -> None:
    records = [
        ["Notes", "fusebillId", "Notes", "geotabId", "Notes", "Notes_2", ""],
        ["a", "1", "b", "g", "c", "d", "e"],
    ]
    sheet = loader.load(helpers.write_csv(tmp_path / "in.csv", records))
    extras = values(sheet)["extras"]
    # Five columns, five distinct names, nothing merged or lost, values in input order.
    assert len(extras) == 5
    assert list(extras.values()) == [["a"], ["b"], ["c"], ["d"], ["e"]]
    names = list(extras)
    assert names[0] == "Notes"
    assert all(name.startswith("Notes") for name in names[:4])
    assert names[4].strip()


def test_trailing_delimiter_makes_no_column(tmp_path: Path) -> None:
    sheet = load_bytes(tmp_path, b"fusebillId,geotabId,\r\n1,2,\r\n3,4,\r\n")
    assert values(sheet)["extras"] == {}


def test_ragged_rows(tmp_path: Path) -> None:
    data = b"fusebillId,geotabId,Notes\r\n1\r\n2,b\r\n3,c,n,EXTRA1,EXTRA2\r\n4,d,m\r\n"
    sheet = load_bytes(tmp_path, data)
    assert values(sheet) == {
        "rows": [2, 3, 4, 5],
        "fusebill": ["1", "2", "3", "4"],
        "geotab": ["", "b", "c", "d"],
        "extras": {
            "Notes": ["", "", "n", "m"],
            "column_4": ["", "", "EXTRA1", ""],
            "column_5": ["", "", "EXTRA2", ""],
        },
    }


def test_long_row_on_the_first_data_line(tmp_path: Path) -> None:
    sheet = load_bytes(tmp_path, b"fusebillId,geotabId\r\n1,a,lost?\r\n2,b\r\n")
    assert values(sheet)["extras"] == {"column_3": ["lost?", ""]}


# --- the leading apostrophe -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "loaded"),
    [
        ("'=SUM(A1)", "=SUM(A1)"),
        ("'+1", "+1"),
        ("'-5", "-5"),
        ("'@cmd", "@cmd"),
        ("'\tx", "\tx"),
        ("'\rx", "\rx"),
        ("'\nx", "\nx"),
        ("''=x", "'=x"),
        ("'''=x", "''=x"),
        ("'abc", "'abc"),
        ("''abc", "''abc"),
        ("'", "'"),
        ("a'=b", "a'=b"),
        (" '=x", " '=x"),
        ("=x", "=x"),
    ],
)
def test_one_leading_apostrophe_removed(
    tmp_path: Path, helpers: type[Helpers], cell: str, loaded: str
) -> None:
    records = [["fusebillId", "geotabId", "Notes"], [cell, cell, cell]]
    sheet = loader.load(helpers.write_csv(tmp_path / "in.csv", records))
    assert values(sheet)["fusebill"] == [loaded]
    assert values(sheet)["geotab"] == [loaded]
    assert values(sheet)["extras"] == {"Notes": [loaded]}


def test_apostrophe_in_header_names(tmp_path: Path, helpers: type[Helpers]) -> None:
    records = [["'=Notes", "fusebillId", "''-x", "'geotabId"], ["n", "1", "m", "g"]]
    path = helpers.write_csv(tmp_path / "in.csv", records)
    # "'geotabId" keeps its apostrophe, so it is not recognised: name it explicitly.
    sheet = loader.load(path, geotab_column="'geotabId")
    assert list(sheet.extras) == ["=Notes", "'-x"]


# --- XLSX -----------------------------------------------------------------------------------


def test_xlsx_numbers_and_text(tmp_path: Path, helpers: type[Helpers]) -> None:
    cell = helpers.Cell
    path = helpers.write_xlsx(
        tmp_path / "in.xlsx",
        {
            "Sheet1": {
                1: ["Fusebill ID", "Geotab ID", "Amount", "Note"],
                2: [12717595, "0909909", 1.5, "text"],
                3: [12717595.0, "00012", 3, None],
                4: [cell(909909, "0000000"), cell(42, "0000000"), cell(7, "000"), "x"],
                5: ["0001234", 1234, -2, True],
                6: [12717596, "g", 0.1, "=1+1"],
            }
        },
    )
    sheet = loader.load(path)
    assert values(sheet) == {
        "rows": [2, 3, 4, 5, 6],
        "fusebill": ["12717595", "12717595", "0909909", "0001234", "12717596"],
        "geotab": ["0909909", "00012", "0000042", "1234", "g"],
        "extras": {
            "Amount": ["1.5", "3", "007", "-2", "0.1"],
            "Note": ["text", "", "x", "TRUE", "=1+1"],
        },
    }


def test_xlsx_sheet_choice(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_xlsx(
        tmp_path / "in.xlsx",
        {
            "First": {1: ["fusebillId", "geotabId"], 2: [1, "first"]},
            "Second sheet": {1: ["geotabId", "fusebillId"], 2: ["second", 2], 3: ["third", 3]},
        },
    )
    assert loader.load(path).geotab.to_pylist() == ["first"]
    chosen = loader.load(path, sheet="Second sheet")
    assert values(chosen) == {
        "rows": [2, 3],
        "fusebill": ["2", "3"],
        "geotab": ["second", "third"],
        "extras": {},
    }
    error = load_error(path, sheet="Third")
    assert "'Third'" in str(error) and "'First'" in str(error) and "'Second sheet'" in str(error)


def test_xlsx_blank_rows_keep_numbering(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_xlsx(
        tmp_path / "in.xlsx",
        {
            "S": {
                1: ["fusebillId", "geotabId", "Notes"],
                2: [1, "a"],
                # row 3 absent, row 4 has only empty-string / whitespace cells
                4: ["", " ", None],
                5: [2, "b", "n"],
                9: [None, None, "note only"],
            }
        },
    )
    assert values(loader.load(path)) == {
        "rows": [2, 5, 9],
        "fusebill": ["1", "2", ""],
        "geotab": ["a", "b", ""],
        "extras": {"Notes": ["", "n", "note only"]},
    }


def test_xlsx_header_not_in_first_row(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_xlsx(
        tmp_path / "in.xlsx", {"S": {2: ["fusebillId", "geotabId"], 3: [1, "a"]}}
    )
    sheet = loader.load(path)
    assert (sheet.header_row, sheet.rows.to_pylist(), sheet.geotab.to_pylist()) == (2, [3], ["a"])


def test_xlsx_header_only(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_xlsx(tmp_path / "in.xlsx", {"S": {1: ["fusebillId", "geotabId"]}})
    assert "no data rows" in str(load_error(path))


def test_xlsx_empty_sheet(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_xlsx(tmp_path / "in.xlsx", {"S": {}})
    load_error(path)


def test_sheet_option_on_a_csv_is_a_config_error(tmp_path: Path, helpers: type[Helpers]) -> None:
    path = helpers.write_csv(tmp_path / "in.csv", [["fusebillId", "geotabId"], ["1", "2"]])
    assert isinstance(load_error(path, sheet="Sheet1"), ConfigError)


def test_uppercase_extensions(tmp_path: Path, helpers: type[Helpers]) -> None:
    csv_path = helpers.write_csv(tmp_path / "IN.CSV", [["fusebillId", "geotabId"], ["1", "2"]])
    xlsx_path = helpers.write_xlsx(
        tmp_path / "IN.XLSX", {"S": {1: ["fusebillId", "geotabId"], 2: [1, "2"]}}
    )
    assert loader.load(csv_path).geotab.to_pylist() == ["2"]
    assert loader.load(xlsx_path).geotab.to_pylist() == ["2"]


# --- file-level errors ----------------------------------------------------------------------


def _make_bad_input(tmp_path: Path, kind: str, xlsx_bytes: bytes) -> tuple[Path, str]:
    """A file (or not) of the given kind, and a word its error message must contain."""
    header = b"fusebillId,geotabId\r\n"
    files: dict[str, tuple[str, bytes, str]] = {
        "txt": ("in.txt", header + b"1,2\r\n", ".txt"),
        "xls": ("in.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 100, ".xls"),
        "no-extension": ("in", header + b"1,2\r\n", "in"),
        "empty": ("in.csv", b"", "empty"),
        "whitespace-only": ("in.csv", b" \r\n\r\n\t\r\n", "empty"),
        "bom-only": ("in.csv", b"\xef\xbb\xbf", "empty"),
        "header-only": ("in.csv", header, "no data rows"),
        "header-and-blank-lines": ("in.csv", header + b"\r\n,\r\n \r\n", "no data rows"),
        "only-blank-rows": ("in.csv", b",,\r\n,,\r\n", "empty"),
        "columns-not-found": ("in.csv", b"a,b\r\n1,2\r\n", "fusebillId"),
        "garbage-xlsx": ("in.xlsx", b"this is not a zip file at all", "in.xlsx"),
        "csv-named-xlsx": ("in.xlsx", header + b"1,2\r\n", "in.xlsx"),
        "empty-xlsx": ("in.xlsx", b"", "in.xlsx"),
        "truncated-xlsx": ("in.xlsx", xlsx_bytes[: len(xlsx_bytes) // 2], "in.xlsx"),
        "zip-not-workbook": ("in.xlsx", b"", "in.xlsx"),
    }
    if kind == "missing":
        return tmp_path / "nope.csv", "not found"
    if kind == "directory":
        folder = tmp_path / "folder.csv"
        folder.mkdir()
        return folder, "not a file"
    name, data, word = files[kind]
    path = tmp_path / name
    if kind == "zip-not-workbook":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
    else:
        path.write_bytes(data)
    return path, word


FILE_ERRORS = [
    "missing",
    "directory",
    "txt",
    "xls",
    "no-extension",
    "empty",
    "whitespace-only",
    "bom-only",
    "header-only",
    "header-and-blank-lines",
    "only-blank-rows",
    "columns-not-found",
    "garbage-xlsx",
    "csv-named-xlsx",
    "empty-xlsx",
    "truncated-xlsx",
    "zip-not-workbook",
]


@pytest.mark.parametrize("kind", FILE_ERRORS)
def test_file_level_errors(tmp_path: Path, small_xlsx_bytes: bytes, kind: str) -> None:
    path, word = _make_bad_input(tmp_path, kind, small_xlsx_bytes)
    error = load_error(path)
    assert word.lower() in str(error).lower(), str(error)


def test_xls_error_suggests_saving_as_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    assert ".xlsx" in str(load_error(path))


# --- the bundled sample ---------------------------------------------------------------------


def test_sample_xlsx_cells_are_typed_like_a_real_workbook(helpers: type[Helpers]) -> None:
    workbook = openpyxl.load_workbook(helpers.SAMPLE_XLSX)
    sheet = workbook.worksheets[0]
    rows = {cells[0].row: cells for cells in sheet.iter_rows(min_row=1, max_col=2)}
    assert rows[1][0].value == "Fusebill ID"
    assert rows[2][0].value == 12717595 and rows[2][0].data_type == "n"
    assert rows[2][1].value == "0909909" and rows[2][1].data_type == "s"
    assert rows[5][1].value == "0001234"
    assert rows[6][0].value is None and rows[6][1].value is None  # the blank row stays blank
    assert rows[7][0].value == 1000003 and rows[7][0].data_type == "n"
    assert rows[10][0].value == "1,000,005"  # not a plain integer: text
    assert rows[20][1].value == '=HYPERLINK("x")' and rows[20][1].data_type == "s"


def test_sample_xlsx_matches_sample_csv(helpers: type[Helpers]) -> None:
    from_csv = loader.load(helpers.SAMPLE_CSV)
    from_xlsx = loader.load(helpers.SAMPLE_XLSX)
    csv_values, xlsx_values = values(from_csv), values(from_xlsx)
    # Row 7 is the text "1000003.0" in the CSV and the number 1000003 in the workbook.
    index = csv_values["rows"].index(7)
    assert csv_values["fusebill"][index] == "1000003.0"
    assert xlsx_values["fusebill"][index] == "1000003"
    xlsx_values["fusebill"][index] = "1000003.0"
    assert xlsx_values == csv_values
    a, b = validate.validate(from_csv), validate.validate(from_xlsx)
    for field in ("rows", "fusebill", "geotab", "status", "message", "error_key"):
        assert getattr(a, field).to_pylist() == getattr(b, field).to_pylist(), field


def test_sample_xlsx_dry_run_matches_csv(
    tmp_path: Path,
    helpers: type[Helpers],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from batch_latch import cli

    monkeypatch.chdir(tmp_path)  # in this process: a dry run's reports need no process
    for name in [n for n in os.environ if n.startswith("FUSEBILL_")]:
        monkeypatch.delenv(name)
    for name, sample in (("csv", helpers.SAMPLE_CSV), ("xlsx", helpers.SAMPLE_XLSX)):
        code = cli.main(["run", str(sample), "--dry-run", "--out", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code == 1, err  # the sample has invalid rows
        assert err == ""
    csv_rows = helpers.read_csv_records(tmp_path / "csv" / "results.csv")
    xlsx_rows = helpers.read_csv_records(tmp_path / "xlsx" / "results.csv")
    assert xlsx_rows == csv_rows
    status = {int(r[0]): r[3] for r in csv_rows[1:]}
    assert status[2] == "valid" and status[15] == "duplicate" and status[21] == "invalid"
    assert 6 not in status  # the blank row


def test_sample_xlsx_script_reproduces_the_committed_file(
    tmp_path: Path, helpers: type[Helpers]
) -> None:
    import runpy

    script = runpy.run_path(str(helpers.SAMPLE_CSV.parents[1] / "scripts" / "make_sample_xlsx.py"))
    fresh = script["make"](helpers.SAMPLE_CSV, tmp_path / "fresh.xlsx")
    assert values(loader.load(fresh)) == values(loader.load(helpers.SAMPLE_XLSX))
