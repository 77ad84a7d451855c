"""Cases met in real workbooks from public test corpora (Excel, LibreOffice, .NET and PHP
writers), each rebuilt by hand as the smallest XML that shows it: no third-party file is
copied here. Each runs through the fast scan and the exact XML reader."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from batch_latch.errors import InputError
from batch_latch.sheet import loader, validate
from tests.sheet.test_xlsx_corpus import (
    HEADER,
    MAIN,
    PKG,
    REL,
    inline,
    num,
    reader,
    row,
    write_book,
)

__all__ = ["reader"]  # the fixture, imported for its use below

STRICT_MAIN = "http://purl.oclc.org/ooxml/spreadsheetml/main"
STRICT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships"


def test_date1904_with_an_excel_2013_extension_workbookpr(tmp_path: Path, reader: str) -> None:
    """Excel 2013+ adds <x15:workbookPr chartTrackingRefBase="1"/> in extLst: it holds no
    date1904 and must not turn a 1904 workbook back into a 1900 one."""
    body = HEADER + row(2, num("A2", "1"), inline("B2", "g"), num("C2", "1", 1))
    path = write_book(tmp_path / "d.xlsx", [("S", "visible", body)], styles=[0, 14])
    x15 = "http://schemas.microsoft.com/office/spreadsheetml/2010/11/main"
    workbook = (
        f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><workbookPr date1904="1"/>'
        '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets><extLst><ext uri="{x}">'
        f'<x15:workbookPr xmlns:x15="{x15}" chartTrackingRefBase="1"/></ext></extLst></workbook>'
    )
    _replace(path, {"xl/workbook.xml": workbook})
    assert loader.load(path).extras["Notes"].to_pylist() == ["1904-01-02"]


def test_formula_that_gave_empty_text_is_an_empty_cell(tmp_path: Path, reader: str) -> None:
    """=IF(A2="","",...) filled down a sheet: Excel saves t="str" with <v></v> (or <v/>)
    and shows nothing; such rows are blank, not "formula with no saved value"."""
    empty_a = '<c r="A{r}" t="str"><f>IF(C{r}="","",C{r})</f><v></v></c>'
    empty_b = '<c r="B{r}" t="str"><f>IF(C{r}="","",C{r})</f><v/></c>'
    body = (
        HEADER
        + row(2, num("A2", "1"), inline("B2", "g2"))
        + row(3, empty_a.format(r=3), empty_b.format(r=3))
        + row(4, num("A4", "4"), empty_b.format(r=4), '<c r="C4"><f>NOW()</f><v/></c>')
    )
    path = write_book(tmp_path / "f.xlsx", [("S", "visible", body)])
    sheet = loader.load(path)
    assert sheet.rows.to_pylist() == [2, 4]
    assert sheet.geotab.to_pylist() == ["g2", ""]
    assert sheet.extras["Notes"].to_pylist() == ["", ""]
    verdicts = validate.validate(sheet)
    assert "formula" not in (verdicts.message.to_pylist()[1] or "")


def test_shared_string_cell_with_empty_value_and_whitespace(tmp_path: Path, reader: str) -> None:
    """An ERP export: t="s" with <v/> (an empty cell) and newlines between the tags."""
    body = (
        HEADER
        + '<row r="2">\n<c r="A2" t="s"><v>0</v>\n</c>\n<c r="B2" t="s"><v/>\n</c>\n'
        + '<c r="C2" t="s"><v>1</v>\n</c>\n</row>\n'
    )
    strings = ["<si><t>7</t></si>", "<si><t>n</t></si>"]
    path = write_book(tmp_path / "s.xlsx", [("S", "visible", body)], strings=strings)
    sheet = loader.load(path)
    assert (sheet.fusebill.to_pylist(), sheet.geotab.to_pylist()) == (["7"], [""])
    assert sheet.extras["Notes"].to_pylist() == ["n"]


def test_part_names_in_other_case_and_with_backslashes(tmp_path: Path, reader: str) -> None:
    """Part names are case-insensitive (xl/SharedStrings.xml) and some zip writers store
    Windows separators (xl\\worksheets\\sheet1.xml); Excel opens both."""
    body = HEADER + row(2, num("A2", "5"), '<c r="B2" t="s"><v>0</v></c>')
    path = write_book(tmp_path / "c.xlsx", [("S", "visible", body)], strings=["<si><t>g5</t></si>"])
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    renamed = {
        "xl/sharedStrings.xml": "xl/SharedStrings.xml",
        "xl/worksheets/sheet1.xml": "xl\\worksheets\\sheet1.xml",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(renamed.get(name, name), data)
    sheet = loader.load(path)
    assert (sheet.fusebill.to_pylist(), sheet.geotab.to_pylist()) == (["5"], ["g5"])


def test_strict_open_xml_workbook(tmp_path: Path, reader: str) -> None:
    """Excel's "Strict Open XML Spreadsheet": purl.oclc.org namespaces and relationships."""
    document = (
        f'<worksheet xmlns="{STRICT_MAIN}"><sheetData>'
        + row(1, inline("A1", "fusebillId"), inline("B1", "geotabId"))
        + row(2, num("A2", "12"), inline("B2", "g12"))
        + "</sheetData></worksheet>"
    )
    path = write_book(tmp_path / "strict.xlsx", [("S", "visible", document)])
    _replace(
        path,
        {
            "xl/workbook.xml": f'<workbook xmlns="{STRICT_MAIN}" xmlns:r="{STRICT_REL}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
            "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="rId1"'
            f' Type="{STRICT_REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
            "_rels/.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="r1" '
            f'Type="{STRICT_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        },
    )
    sheet = loader.load(path)
    assert (sheet.fusebill.to_pylist(), sheet.geotab.to_pylist()) == (["12"], ["g12"])


def test_iso_date_cells_shown_like_other_dates(tmp_path: Path, reader: str) -> None:
    """t="d" cells (PhpSpreadsheet, LibreOffice) hold ISO 8601 text with a "T" and
    fractions of a second; they are shown as the number-cell dates are."""
    body = HEADER + row(
        2,
        num("A2", "1"),
        '<c r="B2" t="d"><v>2021-12-31T23:44:51.894</v></c>',
        '<c r="C2" t="d"><v>2021-12-31T00:00:00</v></c>',
    )
    path = write_book(tmp_path / "d.xlsx", [("S", "visible", body)])
    sheet = loader.load(path)
    assert sheet.extras["Notes"].to_pylist() == ["2021-12-31"]
    message = validate.validate(sheet).message.to_pylist()[0]
    assert message == "B2: date 2021-12-31 23:44:52"


def test_a_long_text_repeated_in_every_cell_is_refused_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One shared string referenced by every cell: refused before it is copied out (with
    a plain line naming the file), not after gigabytes of memory."""
    from batch_latch.sheet import xlsx_render

    monkeypatch.setattr(xlsx_render, "_MAX_TEXT_BYTES", 10_000)
    cells = "".join(f'<c r="A{r}" t="s"><v>0</v></c>' for r in range(2, 200))
    body = HEADER + f'<row r="2">{cells}</row>'
    strings = ["<si><t>" + "x" * 1000 + "</t></si>"]
    path = write_book(tmp_path / "bomb.xlsx", [("S", "visible", body)], strings=strings)
    with pytest.raises(InputError) as info:
        loader.load(path)
    message = str(info.value)
    assert "bomb.xlsx" in message and "1 GB" in message and "\n" not in message


def test_missing_shared_string_names_the_file(tmp_path: Path) -> None:
    body = HEADER + row(2, num("A2", "1"), '<c r="B2" t="s"><v>9</v></c>')
    path = write_book(tmp_path / "s.xlsx", [("S", "visible", body)], strings=[])
    with pytest.raises(InputError) as info:
        loader.load(path)
    assert "s.xlsx" in str(info.value) and "damaged" in str(info.value)


def _replace(path: Path, parts: dict[str, str]) -> None:
    with zipfile.ZipFile(path) as archive:
        old = {name: archive.read(name) for name in archive.namelist()}
    old.update({name: text.encode() for name, text in parts.items()})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in old.items():
            archive.writestr(name, data)
