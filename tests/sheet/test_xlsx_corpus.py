"""Hostile workbooks written by hand (zipfile + XML text), cell by cell: what a library
would tidy away (declared dimensions, row order, escapes, error cells, prefixes) is exactly
what these files hold. Every case runs through the fast scan and the exact XML reader.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_latch.errors import InputError
from batch_latch.sheet import loader, validate, xlsx_cells

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def styles_xml(codes: list[str | int]) -> str:
    """cellXfs in order: an int is a built-in numFmtId, a str a custom format code."""
    custom, xfs = [], []
    for index, code in enumerate(codes):
        if isinstance(code, int):
            xfs.append(f'<xf numFmtId="{code}"/>')
        else:
            fmt_id = 164 + index
            escaped = code.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            custom.append(f'<numFmt numFmtId="{fmt_id}" formatCode="{escaped}"/>')
            xfs.append(f'<xf numFmtId="{fmt_id}" applyNumberFormat="1"/>')
    return (
        f'<styleSheet xmlns="{MAIN}"><numFmts count="{len(custom)}">{"".join(custom)}</numFmts>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs></styleSheet>'
    )


def write_book(
    path: Path,
    sheets: list[tuple[str, str, str]],
    *,
    styles: list[str | int] | None = None,
    strings: list[str] | None = None,
    date1904: bool = False,
) -> Path:
    """``sheets``: (name, state, sheetData inner XML or a whole worksheet document)."""
    entries, rels, parts = [], [], {}
    for n, (name, state, body) in enumerate(sheets, start=1):
        state_attr = "" if state == "visible" else f' state="{state}"'
        entries.append(f'<sheet name="{name}" sheetId="{n}"{state_attr} r:id="rId{n}"/>')
        rels.append(
            f'<Relationship Id="rId{n}" Type="{REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        )
        document = (
            body
            if body.startswith("<?xml") or "<worksheet" in body[:200]
            else (
                f'<worksheet xmlns="{MAIN}"><dimension ref="A1"/><sheetData>{body}</sheetData>'
                "</worksheet>"
            )
        )
        parts[f"xl/worksheets/sheet{n}.xml"] = document
    rels.append(f'<Relationship Id="rIdS" Type="{REL}/styles" Target="styles.xml"/>')
    parts["xl/styles.xml"] = styles_xml(styles or [0])
    if strings is not None:
        rels.append(
            f'<Relationship Id="rIdT" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        )
        parts["xl/sharedStrings.xml"] = f'<sst xmlns="{MAIN}">{"".join(strings)}</sst>'
    pr = '<workbookPr date1904="1"/>' if date1904 else ""
    sheet_list = "".join(entries)
    parts["xl/workbook.xml"] = (
        f'<workbook xmlns="{MAIN}" xmlns:r="{REL}">{pr}<sheets>{sheet_list}</sheets></workbook>'
    )
    parts["xl/_rels/workbook.xml.rels"] = (
        f'<Relationships xmlns="{PKG}">{"".join(rels)}</Relationships>'
    )
    parts["_rels/.rels"] = (
        f'<Relationships xmlns="{PKG}"><Relationship Id="r1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


def inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def num(ref: str, value: str, style: int | None = None) -> str:
    s = f' s="{style}"' if style is not None else ""
    return f'<c r="{ref}"{s}><v>{value}</v></c>'


def row(r: int, *cells: str) -> str:
    return f'<row r="{r}">{"".join(cells)}</row>'


HEADER = row(1, inline("A1", "fusebillId"), inline("B1", "geotabId"), inline("C1", "Notes"))


@pytest.fixture(params=["fast", "exact"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run each test through the fast scan and again through the exact XML reader."""
    if request.param == "exact":

        def refuse(stream: Any, workers: int = 2) -> xlsx_cells.Cells:
            raise xlsx_cells.Irregular

        monkeypatch.setattr(xlsx_cells, "scan_fast", refuse)
    yield request.param


def cells_of(sheet: loader.Sheet) -> dict[str, Any]:
    return {
        "rows": sheet.rows.to_pylist(),
        "fusebill": sheet.fusebill.to_pylist(),
        "geotab": sheet.geotab.to_pylist(),
        "extras": {k: v.to_pylist() for k, v in sheet.extras.items()},
    }


# --- which sheet ------------------------------------------------------------------------------


def test_first_visible_sheet_and_case_insensitive_choice(tmp_path: Path, reader: str) -> None:
    body = HEADER + row(2, num("A2", "1"), inline("B2", "{}"))
    path = write_book(
        tmp_path / "b.xlsx",
        [
            ("Old", "hidden", body.format("old")),
            ("Secret", "veryHidden", body.format("secret")),
            ("Current", "visible", body.format("current")),
        ],
    )
    assert loader.load(path).geotab.to_pylist() == ["current"]
    assert loader.load(path, sheet="OLD").geotab.to_pylist() == ["old"]
    with pytest.raises(InputError) as info:
        loader.load(path, sheet="Nope")
    message = str(info.value)
    assert "'Old'" in message and "'Secret'" in message and "'Current'" in message


# --- numbers as Excel shows them ------------------------------------------------------------


NUMBER_CASES = [
    # (stored <v>, format, shown)
    ("12717595", "General", "12717595"),
    ("12717595.000000002", "General", "12717595"),
    ("1.2717595E7", "General", "12717595"),  # Java writers store doubles like this
    ("0.30000000000000004", "General", "0.3"),
    ("123456789012", "General", "1.23457E+11"),  # 12 digits: scientific in General
    ("9100000000000000", "General", "9.1E+15"),
    ("909909", "0000000", "0909909"),
    ("-909909", "0000000;-0000000", "-0909909"),
    ("909909", "0000000;-0000000", "0909909"),
    ("42", '"GT"0000', "GT0042"),
    ("42", "\\G\\T0000", "GT0042"),
    ("42", "@", "42"),
    ("5551234", "000-0000", "555-1234"),
    ("0.15", "0%", "15%"),
    ("1234567", "#,##0", "1,234,567"),
    ("0", '0;-0;"none"', "none"),
]


@pytest.mark.parametrize(("stored", "code", "shown"), NUMBER_CASES)
def test_number_cell_shown_with_its_format(
    tmp_path: Path, reader: str, stored: str, code: str, shown: str
) -> None:
    body = HEADER + row(2, num("A2", "1"), num("B2", stored, 1), num("C2", stored, 1))
    path = write_book(tmp_path / "n.xlsx", [("S", "visible", body)], styles=[0, code])
    sheet = loader.load(path)
    assert sheet.geotab.to_pylist() == [shown]
    assert sheet.extras["Notes"].to_pylist() == [shown]


# --- _xHHHH_ escapes ---------------------------------------------------------------------------


def test_escapes_decoded_in_shared_and_inline_strings(tmp_path: Path, reader: str) -> None:
    strings = [
        "<si><t>fusebillId</t></si>",
        "<si><t>geotabId</t></si>",
        "<si><t>Notes</t></si>",
        "<si><t>GT-1001_x000D_</t></si>",
        "<si><t>_x005F_x0041_</t></si>",
        "<si><r><t>rich </t></r><r><rPr><b/></rPr><t>text</t></r><rPh><t>ふりがな</t></rPh></si>",
    ]

    def s(ref: str, i: int) -> str:
        return f'<c r="{ref}" t="s"><v>{i}</v></c>'

    body = (
        row(1, s("A1", 0), s("B1", 1), s("C1", 2))
        + row(2, num("A2", "1"), s("B2", 3), s("C2", 4))
        + row(3, num("A3", "2"), inline("B3", "G_x0002_X"), s("C3", 5))
        + row(4, num("A4", "3"), inline("B4", "a &amp; b"), inline("C4", "x_x005F_y"))
    )
    path = write_book(tmp_path / "e.xlsx", [("S", "visible", body)], strings=strings)
    sheet = loader.load(path)
    assert cells_of(sheet)["geotab"] == ["GT-1001\r", "G\x02X", "a & b"]
    assert sheet.extras["Notes"].to_pylist() == ["_x0041_", "rich text", "x_y"]
    verdicts = validate.validate(sheet)
    # GT-1001 + CR trims to GT-1001 (what Excel shows); the control character is invalid.
    assert verdicts.geotab.to_pylist()[0] == "GT-1001"
    assert verdicts.status.to_pylist() == ["valid", "invalid", "valid"]
    assert "U+0002" in verdicts.message.to_pylist()[1]


# --- shape: dimension, order, the far corner -------------------------------------------------


def test_data_beyond_declared_dimension_and_rows_out_of_order(tmp_path: Path, reader: str) -> None:
    body = (
        row(3, num("A3", "3"), inline("B3", "c"), inline("E3", "far"))
        + HEADER
        + row(2, num("A2", "2"), inline("B2", "b"))
    )
    path = write_book(tmp_path / "d.xlsx", [("S", "visible", body)])  # dimension says A1
    assert cells_of(loader.load(path)) == {
        "rows": [2, 3],
        "fusebill": ["2", "3"],
        "geotab": ["b", "c"],
        "extras": {"Notes": ["", ""], "column_4": ["", "far"]},
    }


def test_formatted_empty_cell_at_the_far_corner_adds_nothing(tmp_path: Path, reader: str) -> None:
    body = (
        HEADER
        + row(2, num("A2", "1"), inline("B2", "a"))
        + '<row r="1048576"><c r="XFD1048576" s="1"/></row>'
    )
    path = write_book(tmp_path / "x.xlsx", [("S", "visible", body)], styles=[0, "0000"])
    sheet = loader.load(path)
    assert cells_of(sheet)["rows"] == [2]
    assert list(sheet.extras) == ["Notes"]


def test_far_corner_with_a_value_stays_sparse(tmp_path: Path, reader: str) -> None:
    body = (
        HEADER
        + row(2, num("A2", "1"), inline("B2", "a"))
        + row(1048576, inline("XFD1048576", "corner"))
    )
    path = write_book(tmp_path / "c.xlsx", [("S", "visible", body)])
    sheet = loader.load(path)
    assert sheet.rows.to_pylist() == [2, 1048576]
    assert sheet.extras["column_4"].to_pylist() == ["", "corner"]  # one column, not 16,381


# --- cells that cannot be ids ----------------------------------------------------------------


def test_error_date_boolean_and_unsaved_formula(tmp_path: Path, reader: str) -> None:
    body = (
        HEADER
        + row(
            2, num("A2", "1"), '<c r="B2" t="e"><v>#N/A</v></c>', '<c r="C2" t="e"><v>#REF!</v></c>'
        )
        + row(3, num("A3", "2"), num("B3", "45000", 1), num("C3", "45000.5", 1))
        + row(4, '<c r="A4" t="b"><v>1</v></c>', inline("B4", "g4"), '<c r="C4" t="b"><v>0</v></c>')
        + row(5, num("A5", "5"), '<c r="B5"><f>VLOOKUP(A5,X!A:B,2,0)</f></c>')
        + row(6, num("A6", "6"), inline("B6", "ok"), '<c r="C6"><f>1+1</f></c>')
    )
    path = write_book(tmp_path / "p.xlsx", [("S", "visible", body)], styles=[0, "yyyy-mm-dd"])
    sheet = loader.load(path)
    assert sheet.rows.to_pylist() == [2, 3, 4, 5, 6]
    # v3: yyyy-mm-dd hides the time of 45000.5, as Excel shows it (contract, "Input").
    assert sheet.extras["Notes"].to_pylist() == ["#REF!", "2023-03-15", "FALSE", "", ""]
    verdicts = validate.validate(sheet)
    messages = verdicts.message.to_pylist()
    assert verdicts.status.to_pylist() == ["invalid"] * 4 + ["valid"]
    assert messages[0] == "B2: Excel error #N/A"
    assert messages[1].startswith("B3: date") and "2023-03-15" in messages[1]
    assert messages[2] == "A4: boolean TRUE"
    assert messages[3] == "B5: formula with no saved value"
    assert set(verdicts.error_key.to_pylist()[:4]) == {"excel_cell"}


def test_date1904_workbook(tmp_path: Path, reader: str) -> None:
    body = HEADER + row(2, num("A2", "1"), inline("B2", "g"), num("C2", "0", 1))
    path = write_book(tmp_path / "d.xlsx", [("S", "visible", body)], styles=[0, 14], date1904=True)
    assert loader.load(path).extras["Notes"].to_pylist() == ["1904-01-01"]


# --- unusual but valid writers -----------------------------------------------------------------


def test_prefixed_namespace_and_cells_without_r(tmp_path: Path) -> None:
    """.NET Open XML SDK style: ``x:`` prefixes; some writers leave out ``r``."""
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><x:worksheet xmlns:x="{MAIN}"><x:sheetData>'
        '<x:row><x:c t="inlineStr"><x:is><x:t>fusebillId</x:t></x:is></x:c>'
        '<x:c t="inlineStr"><x:is><x:t>geotabId</x:t></x:is></x:c></x:row>'
        '<x:row><x:c><x:v>7</x:v></x:c><x:c t="inlineStr"><x:is><x:t>g7</x:t></x:is></x:c></x:row>'
        "</x:sheetData></x:worksheet>"
    )
    path = write_book(tmp_path / "p.xlsx", [("S", "visible", document)])
    sheet = loader.load(path)
    assert (sheet.rows.to_pylist(), sheet.fusebill.to_pylist(), sheet.geotab.to_pylist()) == (
        [2],
        ["7"],
        ["g7"],
    )


def test_formula_with_saved_value_and_other_attribute_order(tmp_path: Path, reader: str) -> None:
    body = HEADER + row(
        2,
        '<c t="n" s="1" r="A2"><f>1000+1</f><v>1001</v></c>',
        '<c r="B2" t="str"><f>"G"&amp;A2</f><v>G1001</v></c>',
    )
    path = write_book(tmp_path / "f.xlsx", [("S", "visible", body)], styles=[0, "00000"])
    sheet = loader.load(path)
    assert (sheet.fusebill.to_pylist(), sheet.geotab.to_pylist()) == (["01001"], ["G1001"])


# --- file-level problems -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "password"),
        (b"PK\x03\x04 this is not really a zip", "damaged"),
        (b"fusebillId,geotabId\r\n1,2\r\n", "not an Excel workbook"),
    ],
    ids=["encrypted", "damaged", "not-zip"],
)
def test_unusable_workbooks_are_one_plain_line(tmp_path: Path, data: bytes, word: str) -> None:
    path = tmp_path / "bad.xlsx"
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        loader.load(path)
    message = str(info.value)
    assert word in message and "bad.xlsx" in message and "\n" not in message
    assert "Error" not in message and "Zip" not in message  # no exception class names


def test_missing_shared_string_part_is_a_plain_error(tmp_path: Path) -> None:
    body = HEADER + row(2, num("A2", "1"), '<c r="B2" t="s"><v>9</v></c>')
    path = write_book(tmp_path / "s.xlsx", [("S", "visible", body)])
    with pytest.raises(InputError) as info:
        loader.load(path)
    assert "\n" not in str(info.value)
