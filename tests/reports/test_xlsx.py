"""results.xlsx: real files written, read back with openpyxl (and calamine), cell by cell."""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import openpyxl
import pyarrow as pa
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from batch_latch.reports import xlsx as report_xlsx
from batch_latch.reports.xlsx import MAX_XLSX_ROWS, write_results_xlsx
from batch_latch.reports.xlsx_rows import excel_escape
from batch_latch.vocab import Change, Status

TEXT_COLUMNS = (
    "fusebillId",
    "geotabId",
    "status",
    "message",
    "error_key",
    "change",
    "previous_geotabId",
    "finished_at",
)
COLUMNS = (
    "row",
    "fusebillId",
    "geotabId",
    "status",
    "http_status",
    "attempts",
    "message",
    "error_key",
    "change",
    "previous_geotabId",
    "finished_at",
)
COUNTS = {Status.SUCCESS: 2, Status.FAILED: 1, Status.INVALID: 1}
CHANGES = {Change.NEW: 1, Change.RELATCH: 1, Change.UNCHANGED: 0}


def record(row: int, status: str = "success", **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "row": row,
        "fusebillId": str(1_000_000 + row),
        "geotabId": f"GT-{row}",
        "status": status,
        "http_status": 200,
        "attempts": 1,
        "message": "latched",
        "error_key": "",
        "change": "new",
        "previous_geotabId": "",
        "finished_at": "2026-11-27T10:00:00Z",
    }
    base.update(values)
    return base


def make_table(records: Sequence[dict[str, Any]], extra: Sequence[str] = ()) -> pa.Table:
    arrays = {}
    for name in (*COLUMNS, *extra):
        kind = pa.int64() if name in ("row", "http_status", "attempts") else pa.string()
        arrays[name] = pa.array([r.get(name, "") for r in records], kind)
    return pa.table(arrays)


def write(tmp_path: Path, table: pa.Table, **kwargs: Any) -> Path:
    path = tmp_path / "results.xlsx"
    write_results_xlsx(path, table, COUNTS, CHANGES, title=kwargs.get("title", "Run of x.xlsx"))
    return path


def excel_reads(stored: str) -> str:
    """What Excel shows for a stored ``<t>`` text: one left-to-right pass of ``_xHHHH_``."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), stored)


def results_rows(path: Path) -> list[list[Any]]:
    sheet = openpyxl.load_workbook(path)["Results"]
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_ids_numbers_and_formula_text_stay_text(tmp_path: Path) -> None:
    odd = ["0909909", "00042", "12717595", '=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "1E5"]
    recs = [record(2 + i, fusebillId=v, geotabId=v, message=v) for i, v in enumerate(odd)]
    recs.append(record(99, geotabId="http://example.com/x", http_status=404, attempts=3))
    path = write(tmp_path, make_table(recs))
    sheet = openpyxl.load_workbook(path)["Results"]
    assert [c.value for c in sheet[1]] == list(COLUMNS)
    for i, value in enumerate(odd, start=2):
        for col in (2, 3, 7):
            cell = sheet.cell(i, col)
            assert cell.data_type == "s", (value, cell.data_type)
            assert cell.value == value
        assert sheet.cell(i, 1).value == str(i)  # row, as text too
    last = sheet.cell(len(recs) + 1, 1).row
    assert [sheet.cell(last, c).value for c in (1, 3, 5, 6)] == [
        "99",
        "http://example.com/x",
        "404",
        "3",
    ]
    assert not sheet._hyperlinks
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<v>" not in xml  # no formulas, no number cells


HOSTILE = [
    "GT-1001_x000D_",  # Excel's escape as literal text
    "_x0041_",
    "_x005F_x0041_",  # overlapping literals: XlsxWriter's own escape gets this wrong
    "x005F_ and _x12_ and _xZZZZ_",
    "a\rb",
    "a\r\nb",
    "tab\there\nnewline",
    "ctl \x00\x01\x02\x0b\x0c\x1b\x1f end",
    "\ufffe\uffff",
    "<r><t>rich?</t></r>",
    '<r></is></c><c r="Z1"><f>1+1</f></c><c><is><r></r>',  # XML injection through a cell
    "a & b < c > d",
    "  padded  ",
    "\u00a0nbsp\u3000",
    "é 😀 \u200b",
    "\x7f\x85",
]


def test_hostile_text_round_trips(tmp_path: Path) -> None:
    recs = [record(2 + i, geotabId=v, message=v, Notes=v) for i, v in enumerate(HOSTILE)]
    path = write(tmp_path, make_table(recs, extra=["Notes"]))
    rows = results_rows(path)[1:]
    for value, row in zip(HOSTILE, rows):
        assert [excel_reads(row[2]), excel_reads(row[6]), excel_reads(row[11])] == [value] * 3
    assert rows[0][2] == "GT-1001_x005F_x000D_"  # what the file holds, for the record
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Results").to_python()
    for value, row in zip(HOSTILE, calamine[1:]):
        if value != "\ufffe\uffff":  # calamine leaves _xFFFE_ as is; Excel decodes it
            assert row[2] == value


def excel_stores(text: str) -> str:
    """Excel's rule, written out plainly: every control character (and U+FFFE, U+FFFF) as
    ``_xHHHH_``, and the ``_`` that starts a literal ``_xHHHH_`` as ``_x005F_``."""
    return re.sub(
        r"_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x08\x0b-\x1f\ufffe\uffff]",
        lambda m: "_x005F_" if m.group() == "_" else f"_x{ord(m.group()):04X}_",
        text,
    )


def test_the_escape_shortcut_misses_no_character() -> None:
    """excel_escape skips printable texts without "_x": every code point is checked."""
    for value in HOSTILE:
        assert excel_escape(value) == excel_stores(value), value
    for point in range(0x110000):
        text = f"a{chr(point)}b"
        assert excel_escape(text) == excel_stores(text), hex(point)


def test_dictionary_columns_and_nulls(tmp_path: Path) -> None:
    statuses = ["success", "failed", None, "success", "not_found", "failed"]
    chunks = []
    for part in (statuses[:3], statuses[3:]):  # two chunks, each with its own dictionary
        n = len(part)
        arrays = {name: pa.array(["x"] * n) for name in COLUMNS}
        arrays["row"] = pa.array(range(n), pa.int64())
        arrays["http_status"] = pa.array([None, 404, None][:n], pa.int64())
        arrays["attempts"] = pa.array([0] * n, pa.int64())
        arrays["status"] = pa.array(part).dictionary_encode()
        arrays["message"] = pa.array([f"m-{s}" if s else None for s in part]).dictionary_encode()
        chunks.append(pa.table(arrays))
    table = pa.concat_tables(chunks)
    assert table.column("status").num_chunks == 2
    rows = results_rows(write(tmp_path, table))[1:]
    assert [r[3] for r in rows] == statuses
    assert [r[6] for r in rows] == [f"m-{s}" if s else None for s in statuses]
    assert [r[4] for r in rows] == [None, "404", None, None, "404", None]  # null -> empty
    assert [r[5] for r in rows] == ["0"] * 6


def test_big_dictionary_is_decoded(tmp_path: Path) -> None:
    """A dictionary holding values no row uses still gives each row its own value."""
    values = pa.array(["a", "b", "c", "d", "e"]).dictionary_encode()
    table = make_table([record(2), record(3)]).set_column(
        6,
        "message",
        pa.DictionaryArray.from_arrays(pa.array([4, 0], pa.int32()), values.dictionary),
    )
    assert [r[6] for r in results_rows(write(tmp_path, table))[1:]] == ["e", "a"]


def test_rows_across_batches_keep_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_xlsx, "_BATCH_ROWS", 2)
    recs = [record(i, fusebillId=f"{i:05d}") for i in range(2, 9)]
    rows = results_rows(write(tmp_path, make_table(recs)))
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(2, 9)]
    assert [r[1] for r in rows[1:]] == [f"{i:05d}" for i in range(2, 9)]


def test_layout_frozen_filter_widths_fills(tmp_path: Path) -> None:
    statuses = ["valid", "success", "not_found", "failed", "invalid", "duplicate", "pending"]
    recs = [record(2 + i, status=s) for i, s in enumerate(statuses)]
    recs[0]["message"] = "m" * 500
    path = write(tmp_path, make_table(recs, extra=["Account Name"]))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Results", "Summary"]
    sheet = book["Results"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:L8"
    assert all(c.font.b for c in sheet[1])
    assert sheet.print_title_rows == "$1:$1"  # header repeated on every printed page
    widths = {k: d.width for k, d in sheet.column_dimensions.items()}
    assert 60 <= widths["G"] <= 61  # the long message, capped
    assert widths["J"] >= len("previous_geotabId")  # header wins over short values
    fills = [sheet.cell(2 + i, 4).fill.fgColor.rgb for i in range(len(statuses))]
    assert len(set(fills)) == len(statuses), fills  # one colour per status
    assert fills[1].endswith("C6EFCE")  # success green
    assert sheet.cell(2, 3).fill.fgColor.rgb != fills[0]  # only the status cell is filled
    written = [c for c in sheet[2] if c.value is not None]
    assert len(written) == 9 and all(c.number_format == "@" for c in written)


def test_empty_table_has_header_and_filter(tmp_path: Path) -> None:
    path = write(tmp_path, make_table([]))
    sheet = openpyxl.load_workbook(path)["Results"]
    assert [c.value for c in sheet[1]] == list(COLUMNS)
    assert sheet.max_row == 1
    assert sheet.auto_filter.ref == "A1:K1"


def test_summary_counts_and_chart(tmp_path: Path) -> None:
    path = write(tmp_path, make_table([record(2)]), title="Run of sheet.xlsx, 2026-11-27 10:00 UTC")
    book = openpyxl.load_workbook(path)
    sheet = book["Summary"]
    assert sheet["A1"].value == "Run of sheet.xlsx, 2026-11-27 10:00 UTC"
    cells = [[c.value for c in row] for row in sheet.iter_rows(min_row=4, max_col=2)]
    assert cells[:9] == [
        ["status", "rows"],
        ["valid", 0],
        ["success", 2],
        ["not_found", 0],
        ["failed", 1],
        ["invalid", 1],
        ["duplicate", 0],
        ["pending", 0],
        ["all rows", 1],
    ]
    assert cells[10:16] == [
        ["change", "rows"],
        ["new", 1],
        ["unchanged", 0],
        ["relatch", 1],
        ["unknown", 0],
        ["undo", 0],
    ]
    with zipfile.ZipFile(path) as z:
        chart = z.read("xl/charts/chart1.xml").decode()
        assert "xl/drawings/drawing1.xml" in z.namelist()
    assert "<c:barChart>" in chart and '<c:barDir val="col"/>' in chart
    assert "Summary!$B$5:$B$11" in chart and "Summary!$A$5:$A$11" in chart  # a run: by status


FACTS = [
    ("base URL", "https://secure.fusebill.com/v1"),
    ("user", "ops on billing-1"),
    ("input", "/data/mapping.xlsx"),
    ("input SHA-256", "ab" * 32),
    ("run folder", "20261127T100000.000Z-plan (give it to run --plan, or latest)"),
]


def write_plan(tmp_path: Path, records: Sequence[dict[str, Any]], **counts: int) -> Path:
    path = tmp_path / "results.xlsx"
    changes = {Change.NEW: 2, Change.UNCHANGED: 1, Change.RELATCH: 40, Change.UNKNOWN: 0}
    changes[Change.UNDO] = 0
    write_results_xlsx(
        path,
        make_table(records),
        {Status.VALID: 43, Status.NOT_FOUND: 3, **{Status(k): n for k, n in counts.items()}},
        changes,
        title="plan of mapping.xlsx, 2026-11-27T10:00:00Z",
        facts=FACTS,
        plan=True,
    )
    return path


def test_a_plan_summary_names_the_api_user_sheet_and_run_folder_and_says_what_run_plan_does(
    tmp_path: Path,
) -> None:
    sheet = openpyxl.load_workbook(write_plan(tmp_path, [record(2)]))["Summary"]
    lines = [[c.value for c in row] for row in sheet.iter_rows(min_row=1, max_row=11, max_col=2)]
    assert lines == [
        ["plan of mapping.xlsx, 2026-11-27T10:00:00Z", None],
        [None, None],
        ["base URL", "https://secure.fusebill.com/v1"],
        ["user", "ops on billing-1"],
        ["input", "/data/mapping.xlsx"],
        ["input SHA-256", "ab" * 32],
        ["run folder", "20261127T100000.000Z-plan (give it to run --plan, or latest)"],
        [None, None],
        ["What run --plan of this plan will do", None],
        [
            "run --plan will latch 2 new, will replace 40 geotabIds (relatch), writes nothing "
            "to 1 unchanged; 3 not found (nothing written)",
            None,
        ],
        ["a run without --plan refuses the 40 relatches unless --allow-relatch", None],
    ]
    assert sheet["A10"].font.b  # the replace line stands out
    assert "would refuse" not in " ".join(str(c.value) for row in sheet.iter_rows() for c in row)


def test_a_plan_charts_its_rows_by_change(tmp_path: Path) -> None:
    book = openpyxl.load_workbook(write_plan(tmp_path, [record(2)]))
    sheet = book["Summary"]
    (chart,) = sheet._charts
    (series,) = chart.series
    categories, values = (series.cat.strRef or series.cat.numRef).f, series.val.numRef.f
    assert chart.title.tx.rich.p[0].r[0].t == "Rows by change: what run --plan will do"

    def cells(ref: str) -> list[Any]:
        return [c.value for (c,) in sheet[ref.split("!")[1].replace("$", "")]]

    assert cells(categories) == ["new", "unchanged", "relatch", "not found"]
    assert cells(values) == [2, 1, 40, 3]
    colours = [p.spPr.solidFill.srgbClr for p in series.dPt]
    assert colours == ["C6EFCE", "D9D9D9", "F4511E", "FCE4D6"]


def test_a_plan_with_unread_rows_charts_them_and_says_run_plan_refuses_it(tmp_path: Path) -> None:
    sheet = openpyxl.load_workbook(write_plan(tmp_path, [record(2)], failed=5, pending=2))[
        "Summary"
    ]
    assert sheet["A12"].value == (
        "7 rows not read (failed or pending): run --plan refuses this plan; make a new plan"
    )
    (chart,) = sheet._charts
    cat = chart.series[0].cat
    ref = (cat.strRef or cat.numRef).f.split("!")[1].replace("$", "")
    assert [c.value for (c,) in sheet[ref]][-1] == "not read"


def test_change_cells_are_coloured_by_change_relatch_stands_out(tmp_path: Path) -> None:
    changes = ["new", "unchanged", "relatch", "unknown", "undo", ""]
    recs = [record(2 + i, status="valid", change=c) for i, c in enumerate(changes)]
    sheet = openpyxl.load_workbook(write(tmp_path, make_table(recs)))["Results"]
    assert sheet.cell(1, 9).value == "change"
    cells = [sheet.cell(2 + i, 9) for i in range(len(changes))]
    fills = [c.fill.fgColor.rgb if c.fill.fill_type == "solid" else None for c in cells]
    assert fills == ["FFC6EFCE", "FFD9D9D9", "FFF4511E", "FFFFEB9C", "FFEDE7F6", None]
    relatch = cells[2]
    assert relatch.font.b and relatch.font.color.rgb == "FFFFFFFF"
    assert all(c.number_format == "@" for c in cells[:5])


def test_number_stored_as_text_is_off_for_every_cell_of_both_sheets(tmp_path: Path) -> None:
    path = write(tmp_path, make_table([record(2, fusebillId="0909909")]))
    with zipfile.ZipFile(path) as z:
        sheets = [z.read(f"xl/worksheets/sheet{n}.xml").decode() for n in (1, 2)]
    for xml in sheets:
        assert (
            '<ignoredErrors><ignoredError sqref="A1:XFD1048576" numberStoredAsText="1"/>'
            "</ignoredErrors>"
        ) in xml
    # openpyxl, an independent reader, sees the same cells as text
    assert openpyxl.load_workbook(path)["Results"]["B2"].data_type == "s"


def test_documented_api_only_no_private_speed_overrides() -> None:
    """Only the two corrections of the string writer are overridden (issue 26)."""
    own = {k for k in vars(report_xlsx._TextWorksheet) if not k.startswith("__")}
    assert own == {"_escape_control_characters", "_xml_rich_inline_string"}
    assert not hasattr(report_xlsx, "_FastZip")


def test_unknown_count_keys_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    # keys outside the vocabulary (a caller outside the types): listed all the same
    weird = cast("dict[Status, int]", {"weird": 3})
    write_results_xlsx(path, make_table([]), weird, {Change.NONE: 2}, title="t")
    sheet = openpyxl.load_workbook(path)["Summary"]
    labels = {sheet.cell(r, 1).value: sheet.cell(r, 2).value for r in range(1, 25)}
    assert labels["weird"] == 3 and labels["(none)"] == 2 and labels["success"] == 0


def test_overlong_cell_is_cut_with_marker(tmp_path: Path) -> None:
    long_ascii = "x" * 40_000
    long_emoji = "😀" * 20_000  # 40,000 UTF-16 units in 20,000 characters
    exact = "y" * 32_767
    recs = [record(2, message=long_ascii), record(3, message=long_emoji), record(4, message=exact)]
    rows = results_rows(write(tmp_path, make_table(recs)))[1:]
    first, second, third = (r[6] for r in rows)
    assert first.endswith(" [... cut: 40,000 characters in all, see results.csv]")
    assert first.startswith("x" * 32_000) and len(first) == 32_767
    assert second.endswith(" [... cut: 20,000 characters in all, see results.csv]")
    assert len(second.encode("utf-16-le")) // 2 <= 32_767 and "\ufffd" not in second
    assert third == exact


def test_success_leaves_only_the_report(tmp_path: Path) -> None:
    write(tmp_path, make_table([record(2)]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.xlsx"]
    assert os.stat(tmp_path / "results.xlsx").st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_rename_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.xlsx"
    target.write_bytes(b"old report")

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        write(tmp_path, make_table([record(2)]))
    assert target.read_bytes() == b"old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.xlsx"]


def test_failure_mid_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.xlsx"
    target.write_bytes(b"old report")
    scratch = tmp_path / "scratch"  # where XlsxWriter's own temp files would go by default
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_xlsx, "_write_summary", full)
    with pytest.raises(OSError, match="No space left"):
        write(tmp_path, make_table([record(2)]))
    assert target.read_bytes() == b"old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.xlsx", "scratch"]
    assert list(scratch.iterdir()) == []


def test_close_failure_is_an_oserror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """XlsxWriter wraps a write error at close in FileCreateError; the caller wants OSError."""

    def broken(self: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xlsxwriter.Workbook, "_store_workbook", broken)
    with pytest.raises(OSError, match="No space left") as caught:
        write(tmp_path, make_table([record(2)]))
    assert type(caught.value) is OSError
    assert list(tmp_path.iterdir()) == []


def test_parent_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OSError):
        write_results_xlsx(blocker / "results.xlsx", make_table([]), {}, {}, title="t")
    assert blocker.read_text() == "a file, not a folder"


def test_max_rows_constant() -> None:
    assert MAX_XLSX_ROWS == 200_000


def test_hostile_header_and_title_stay_text(tmp_path: Path) -> None:
    """Column names and the title go through XlsxWriter's own cell writer, not the row XML."""
    names = [HOSTILE[10], "_x005F_x0041_", "<r>x</r>", "a\x02b"]
    path = tmp_path / "r.xlsx"
    table = make_table([record(2, **dict.fromkeys(names, "v"))], extra=names)
    write_results_xlsx(path, table, {}, {}, title=HOSTILE[10])
    book = openpyxl.load_workbook(path)
    header = [excel_reads(c.value) for c in book["Results"][1]]
    assert header[len(COLUMNS) :] == names
    assert book["Summary"]["A1"].value == HOSTILE[10]
    assert book["Summary"]["A1"].data_type == "s"
