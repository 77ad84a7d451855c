"""v3 "Excel-exact, the rest of the way" (issue #20): hand-written workbooks, every cell
against the text Excel shows, through the fast scan and the exact XML reader.

Where each expected text comes from:
- [I20] issue #20, whose figures are Excel's display (checked there against LibreOffice's
  "save cell contents as shown" export of the same files);
- [MS] Microsoft support, "Number format codes" (the worked examples: ``#,##0,`` shows
  12,000 as ``12``, ``0.0,,`` shows 12,200,000 as ``12.2``, ``# ?/?`` shows 5.25 as
  ``5 1/4``, ``# ??/??`` shows 5.3 as ``5 3/10``, the text section ``"gross receipts for "@``,
  "Excel keeps 15 significant digits");
- [SSF] SheetJS SSF's test tables of Excel output (fraction padding ``1  1/2 ``, blank
  integer ``# ?/?`` on 0.5, fixed denominators ``?/8``);
- [ENF] ExcelNumberFormat's tests (a negative under a first conditional section shows no
  sign).
"""

from __future__ import annotations

from pathlib import Path

import msoffcrypto.format.ooxml
import pytest
import xlsxwriter

from batch_latch.errors import InputError
from batch_latch.sheet import loader, numfmt, numfmt_parts, validate
from tests.sheet.test_xlsx_corpus import HEADER, inline, num, reader, row, write_book  # noqa: F401

NUMBER_CASES = [
    # (stored <v>, format, shown, source)
    ("42", "[<100000]00000;0", "00042", "I20"),
    ("123456", "[<100000]00000;0", "123456", "I20"),
    ("42", '[<1000]"GT"000;0', "GT042", "I20"),
    ("5551234", "[<=9999999]###-####;(###) ###-####", "555-1234", "I20"),
    ("5551234567", "[<=9999999]###-####;(###) ###-####", "(555) 123-4567", "MS"),
    ("-5", '[<0]"neg "0;0', "neg 5", "ENF"),
    ("12000", "#,##0,", "12", "MS"),
    ("12200000", "0.0,,", "12.2", "MS"),
    ("12345678", '0.0,,"M"', "12.3M", "I20"),
    ("12345678", "#,##0.00,", "12,345.68", "I20"),
    ("1.5", "# ?/?", "1 1/2", "I20"),
    ("5.25", "# ?/?", "5 1/4", "MS"),
    ("5.3", "# ??/??", "5  3/10", "MS"),  # [SSF]: the numerator padded to its two "?"
    ("1.5", "# ??/??", "1  1/2 ", "SSF"),
    ("0.5", "# ?/?", " 1/2", "SSF"),
    ("1.5", "?/8", "12/8", "SSF"),
    ("1.5", "# ?/8", "1 4/8", "SSF"),
    ("1.5", "12", "1 1/2", "MS"),  # built-in 12 is "# ?/?"
    ("0001234", "000", "1234", "I20"),
    ("1.234567890123457E+16", "0", "12345678901234600", "I20"),
    ("123456789012345678", "0", "123456789012346000", "I20"),
    ("0.30000000000000004", "0.00000000000000000", "0.30000000000000000", "MS"),
]


def _book(tmp_path: Path, stored: str, code: str) -> Path:
    style: str | int = int(code) if code.isdigit() and code != "0" and len(code) <= 2 else code
    body = HEADER + row(2, num("A2", "1"), num("B2", stored, 1), num("C2", stored, 1))
    return write_book(tmp_path / "n.xlsx", [("S", "visible", body)], styles=[0, style])


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
@pytest.mark.parametrize(("stored", "code", "shown", "source"), NUMBER_CASES)
def test_number_formats_as_excel_shows(
    tmp_path: Path, stored: str, code: str, shown: str, source: str
) -> None:
    sheet = loader.load(_book(tmp_path, stored, code))
    assert sheet.extras["Notes"].to_pylist() == [shown], source


TEXT_CASES = [
    # (text cell, format, shown, source)
    ("0042", '"GT"@', "GT0042", "I20"),
    ("A17", '@" (old)"', "A17 (old)", "I20"),
    ("g7", '0;-0;0;@"-X"', "g7-X", "I20"),
    ("g7", "\\(@\\)", "(g7)", "I20"),  # ClosedXML's file
    ("Acme", '"gross receipts for "@', "gross receipts for Acme", "MS"),
    ("0042", "@", "0042", "MS"),
    ("0042", "0000", "0042", "MS"),  # no text section: text as it is
    ("g7", '0;-0;0;"n/a"', "n/a", "MS"),  # a text section without @ replaces the text
]


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
@pytest.mark.parametrize(("text", "code", "shown", "source"), TEXT_CASES)
def test_text_sections_on_text_cells(
    tmp_path: Path, text: str, code: str, shown: str, source: str
) -> None:
    strings = [f"<si><t>{t}</t></si>" for t in ("fusebillId", "geotabId", "Notes", text)]
    shared = '<c r="B2" s="1" t="s"><v>3</v></c>'
    inline_cell = f'<c r="C2" s="1" t="inlineStr"><is><t>{text}</t></is></c>'
    body = (
        row(1, *(f'<c r="{c}1" t="s"><v>{i}</v></c>' for i, c in enumerate("ABC")))
        + row(2, num("A2", "1"), shared, inline_cell)
        + row(3, num("A3", "2"), f'<c r="B3" s="1" t="str"><f>A1</f><v>{text}</v></c>')
    )
    path = write_book(
        tmp_path / "t.xlsx", [("S", "visible", body)], styles=[0, code], strings=strings
    )
    sheet = loader.load(path)
    assert sheet.geotab.to_pylist() == [shown, shown], source
    assert sheet.extras["Notes"].to_pylist() == [shown, ""], source


def test_number_under_a_text_only_format_is_general() -> None:
    # [SSF] "Only the text case is allowed to have the @ text sigil": numbers show General.
    assert numfmt.render(42, '"GT"@') == "42"


@pytest.mark.parametrize(
    ("serial", "code", "shown"),
    [
        (45000.5, "yyyy-mm-dd", "2023-03-15"),  # [I20] the format hides the time
        (0.0001, "mm:ss.0", "00:08.6"),  # [I20] 8.64 s: minutes, seconds, tenths
        (0.0001, "mm:ss", "00:09"),  # [MS] built-in 45
        (0.05, "[mm]:ss", "72:00"),  # [MS] elapsed minutes
        (45000.5, "yyyy-mm-dd hh:mm", "2023-03-15 12:00"),  # [I29] ISO, no seconds named
        (45000, "yyyy-mm-dd hh:mm", "2023-03-15 00:00"),  # [I29] midnight is named too
    ],
)
def test_dates_show_only_the_parts_named(serial: float, code: str, shown: str) -> None:
    assert numfmt.serial_to_iso(serial, False, code) == shown


def _id_book(tmp_path: Path, fusebill: str, geotab: str, code: str | int = 0) -> Path:
    body = HEADER + row(2, num("A2", fusebill, 1), num("B2", geotab, 1), inline("C2", "n"))
    return write_book(tmp_path / "i.xlsx", [("S", "visible", body)], styles=[0, code])


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
@pytest.mark.parametrize(
    ("fusebill", "geotab", "code", "cell", "shown", "stored"),
    [
        ("1", "123456789012", 0, "B2", "1.23457E+11", "123456789012"),  # [I20]
        ("1", "1.414973347970818", 0, "B2", "1.414973348", "1.414973347970818"),  # [I20]
        ("1.234567890123457E+16", "7", "0", "A2", "12345678901234600", "12345678901234570"),
        # 18 digits: the double itself holds ...680, and Excel keeps 15 of them
        ("123456789012345678", "7", 0, "A2", "1.23457E+17", "123456789012345680"),
    ],
)
def test_id_shown_lossily_is_invalid(
    tmp_path: Path,
    fusebill: str,
    geotab: str,
    code: str | int,
    cell: str,
    shown: str,
    stored: str,
) -> None:
    verdicts = validate.validate(loader.load(_id_book(tmp_path, fusebill, geotab, code)))
    assert verdicts.status.to_pylist() == ["invalid"]
    message = verdicts.message.to_pylist()[0]
    assert message.startswith(f"{cell}: Excel shows {shown!r}"), message
    assert f"stores {stored}" in message and "store ids as text" in message
    assert verdicts.error_key.to_pylist() == ["excel_cell"]


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
@pytest.mark.parametrize(
    ("fusebill", "geotab", "code"),
    [
        ("1000003", "12717595", 0),  # General shows them as they are
        ("1000003", "12717595.000000002", 0),  # a calculation's dust past the 15th digit
        ("1000003", "909909", "0000000"),
        ("1000003", "42", "[<100000]00000;0"),
        ("999999999999999", "7", "0"),  # 15 digits: all kept
    ],
)
def test_ids_shown_as_stored_stay_valid(
    tmp_path: Path, fusebill: str, geotab: str, code: str | int
) -> None:
    verdicts = validate.validate(loader.load(_id_book(tmp_path, fusebill, geotab, code)))
    assert verdicts.status.to_pylist() == ["valid"], verdicts.message.to_pylist()


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
@pytest.mark.parametrize("code", ["[DBNum1]0", "[$-2000000]0", "[ENG]0", "B2yyyy-mm-dd"])
def test_format_out_of_reach_makes_an_id_invalid(tmp_path: Path, code: str) -> None:
    verdicts = validate.validate(loader.load(_id_book(tmp_path, "1000003", "42", code)))
    assert verdicts.status.to_pylist() == ["invalid"]
    message = verdicts.message.to_pylist()[0]
    assert message.startswith("A2: ") and "not supported" in message and code in message
    assert numfmt_parts.unsupported(code) is not None


def test_out_of_reach_format_outside_the_id_columns_is_carried(tmp_path: Path) -> None:
    body = HEADER + row(2, num("A2", "1"), inline("B2", "g"), num("C2", "42", 1))
    path = write_book(tmp_path / "o.xlsx", [("S", "visible", body)], styles=[0, "[DBNum1]0"])
    sheet = loader.load(path)
    assert validate.validate(sheet).status.to_pylist() == ["valid"]
    assert sheet.extras["Notes"].to_pylist() == ["42"]  # best effort, never an id


@pytest.mark.usefixtures("reader")  # the fast scan and the exact XML reader
def test_sheet_named_with_spaces_exact_first(tmp_path: Path) -> None:
    body = HEADER + row(2, num("A2", "1"), inline("B2", "{}"))
    path = write_book(
        tmp_path / "s.xlsx",
        [
            ("Data", "visible", body.format("plain")),
            ("Data ", "visible", body.format("spaced")),
            (" Ids", "visible", body.format("ids")),
        ],
    )
    assert loader.load(path, sheet="Data ").geotab.to_pylist() == ["spaced"]
    assert loader.load(path, sheet="Data").geotab.to_pylist() == ["plain"]
    assert loader.load(path, sheet="ids").geotab.to_pylist() == ["ids"]
    assert loader.load(path, sheet=" DATA  ").geotab.to_pylist() == ["plain"]


def _encrypted(tmp_path: Path, password: str) -> Path:
    """A workbook encrypted with msoffcrypto-tool's own ECMA-376 Agile encryption (what
    Excel writes), from a complete package (OOXMLFile wants ``[Content_Types].xml``)."""
    plain = tmp_path / "plain.xlsx"
    book = xlsxwriter.Workbook(str(plain))
    sheet = book.add_worksheet("S")
    sheet.write_row(0, 0, ["fusebillId", "geotabId"])
    sheet.write_row(1, 0, [1000003, "g-enc"])
    book.close()
    target = tmp_path / f"enc-{len(password)}.xlsx"
    with plain.open("rb") as source, target.open("wb") as out:
        msoffcrypto.format.ooxml.OOXMLFile(source).encrypt(password, out)
    return target


def test_default_password_workbook_read_like_any_other(tmp_path: Path) -> None:
    sheet = loader.load(_encrypted(tmp_path, "VelvetSweatshop"))
    assert sheet.fusebill.to_pylist() == ["1000003"]
    assert sheet.geotab.to_pylist() == ["g-enc"]


def test_real_password_still_refused(tmp_path: Path) -> None:
    path = _encrypted(tmp_path, "s3cret-Pass")
    with pytest.raises(InputError) as info:
        loader.load(path)
    message = str(info.value)
    assert message == (
        f"{path.name} is password-protected or an old-format (.xls) workbook: "
        "remove the password or save it as .xlsx in Excel, then retry"
    )
