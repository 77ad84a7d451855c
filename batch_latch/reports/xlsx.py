"""``results.xlsx``: the report rows for Excel, built for review, plus a ``Summary`` sheet.

Ops open reports by double-clicking; a CSV lets Excel turn ``0909909`` into ``909909`` and run
``=HYPERLINK(...)``. Here every results cell is a string written with ``write_string`` in
the text format ``@``, so ids and formula-like text stay text without the CSV's leading
``'`` (the caller passes raw values), and Excel's "number stored as text" warning is turned
off for the whole sheet (``ignore_errors``). ``status`` cells are coloured by status and
``change`` cells by change: a ``relatch`` (a geotabId replaced) stands out. The ``Summary``
sheet names the API, the user, the input's SHA-256 and the run folder; a plan's says what
``run --plan`` will do and charts its rows by change.

XlsxWriter's documented API only, in ``constant_memory`` mode (memory follows a row, not
the sheet), with two corrections of its inline-string writer (see :class:`_TextWorksheet`).
Everything is written in a private folder beside ``path`` and renamed over it: a failed
write leaves the old report and no temporary file.

Speed: one ``write_string`` per non-empty cell is the documented API's fastest way; about
94 % of the time is XlsxWriter's own per-cell work. ``write_row``, conditional formats for
the colours and the shared-string mode were measured and are slower (docs/benchmarks.md,
"v4: results.xlsx for review").
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter
from xlsxwriter.exceptions import XlsxFileError
from xlsxwriter.utility import xl_range_abs
from xlsxwriter.worksheet import Worksheet

from batch_latch.jobfolder.files import sync_dir
from batch_latch.plan_words import plan_lines, unread
from batch_latch.reports.xlsx_rows import MAX_XLSX_ROWS as MAX_XLSX_ROWS  # no xlsx above it
from batch_latch.reports.xlsx_rows import as_text, cell_texts, chunkwise, cut, excel_escape
from batch_latch.vocab import Change, Status

#: A count's key: a status or a change.
K = TypeVar("K", bound=str)

#: (fill, font) per status: Excel's Good / Bad / Neutral styles and pale kin, dark text.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "valid": ("#DDEBF7", "#1F4E78"),  # light blue: would be sent
    "success": ("#C6EFCE", "#006100"),  # green
    "not_found": ("#FCE4D6", "#843C0C"),  # light orange: the customer does not exist
    "failed": ("#FFC7CE", "#9C0006"),  # red
    "invalid": ("#FFEB9C", "#7F4F00"),  # amber: fix the cell
    "duplicate": ("#EDE7F6", "#4B2C77"),  # light lavender: nothing to do
    "pending": ("#E7E6E6", "#3A3838"),  # grey: not sent yet
}

#: (fill, font, bold) per change: a relatch (a geotabId replaced) in strong orange-red.
CHANGE_COLOURS: dict[str, tuple[str, str, bool]] = {
    "new": ("#C6EFCE", "#006100", False),  # green: a geotabId latched where none was
    "unchanged": ("#D9D9D9", "#3A3838", False),  # grey: nothing written
    "relatch": ("#F4511E", "#FFFFFF", True),  # strong orange-red: replaces another geotabId
    "unknown": ("#FFEB9C", "#7F4F00", False),  # amber: written without knowing what it held
    "undo": ("#EDE7F6", "#4B2C77", False),  # lavender: put back
}
#: The plan's chart: rows by what run --plan does with them, in this order.
PLAN_BARS: tuple[tuple[str, str], ...] = (
    ("new", "new"),
    ("unchanged", "unchanged"),
    ("relatch", "relatch"),
    ("not found", "not_found"),
)
#: Bars of the plan's chart that are no change: in the colours of their status.
_BAR_STATUS = {"not_found": "not_found", "not_read": "failed"}

_BATCH_ROWS = 8_192  # rows turned into Python strings at a time: bounds memory
_WIDTH_SAMPLE = 1_000  # values per column that decide its width
_MIN_WIDTH, _MAX_WIDTH = 6, 60
_STATUS_COLUMN = "status"
_CHANGE_COLUMN = "change"
#: Every cell of a sheet: Excel's "number stored as text" warning is off for all of them.
_EVERY_CELL = "A1:XFD1048576"


def write_results_xlsx(
    path: Path,
    table: pa.Table,
    counts: Mapping[Status, int],
    changes: Mapping[Change, int],
    *,
    title: str,
    facts: Sequence[tuple[str, str]] = (),
    plan: bool = False,
) -> None:
    """Write ``table`` (report columns in order) and its counts to ``path``, atomically.

    ``facts`` (label, value) head the Summary sheet (the API, the user, the input's SHA-256,
    the run folder); ``plan`` adds what ``run --plan`` will do and charts rows by change.
    Raises ``OSError`` when the file cannot be written; ``path`` is then untouched.
    """
    with tempfile.TemporaryDirectory(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent, ignore_cleanup_errors=True
    ) as folder:
        tmp = Path(folder) / path.name
        with tmp.open("wb") as handle:
            workbook = xlsxwriter.Workbook(
                handle,
                {
                    "constant_memory": True,
                    "strings_to_numbers": False,
                    "strings_to_formulas": False,
                    "strings_to_urls": False,
                    "tmpdir": folder,  # XlsxWriter's own scratch files go with ours
                },
            )
            try:
                _write_results(workbook, table)
                _write_summary(workbook, title, len(table), counts, changes, facts, plan)
                _close(workbook)
            except BaseException:
                # Closed all the same (its documented clean-up), so no constant_memory scratch
                # file stays open: Windows could not delete it. Its own error, if any, is
                # not the one to report.
                with contextlib.suppress(Exception):
                    workbook.close()
                raise
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    sync_dir(path.parent)


class _TextWorksheet(Worksheet):  # type: ignore[misc]
    """XlsxWriter's worksheet with two corrections of its ``constant_memory`` string writer,
    both about reading back exactly the text written, neither about speed:

    - ``_escape_control_characters``: XlsxWriter escapes a literal ``_xHHHH_`` by its
      leading ``_`` with one non-overlapping pass, so ``_x005F_x0041_`` comes back from
      Excel as ``_x005FA``; :func:`excel_escape` escapes every ``_`` that starts one.
    - ``_xml_rich_inline_string``: a string that starts with ``<r>`` and ends with
      ``</r>`` is written as raw rich-text XML, unescaped; from a cell of the input that
      corrupts the file or injects a formula. These sheets have no rich strings: such a
      text is written as any other (escaped).
    """

    @staticmethod
    def _escape_control_characters(data: Any) -> Any:
        return excel_escape(data) if isinstance(data, str) else data

    def _xml_rich_inline_string(self, string: str, attributes: Any = ()) -> None:
        self._xml_inline_string(string, bool(re.search(r"^\s|\s$", string)), attributes)


def _write_results(workbook: Any, table: pa.Table) -> None:
    """Sheet ``Results``: a bold frozen header with a filter, then one text row per row,
    ``status`` and ``change`` cells coloured."""
    sheet = workbook.add_worksheet("Results", worksheet_class=_TextWorksheet)
    names = [cut(str(n)) for n in table.column_names]
    text = {"num_format": "@"}  # a value typed in later stays text too (ids keep zeros)
    header = workbook.add_format({**text, "bold": True, "bottom": 1})
    plain = workbook.add_format(text)
    sheet.ignore_errors({"number_stored_as_text": _EVERY_CELL})
    for col, name in enumerate(names):
        sheet.write_string(0, col, name, header)
    sheet.freeze_panes(1, 0)
    sheet.repeat_rows(0)
    sheet.set_landscape()
    if not names:
        return
    last_row, last_col = len(table), len(names) - 1
    sheet.autofilter(0, 0, last_row, last_col)
    sample = table.slice(0, _WIDTH_SAMPLE)
    for col, name in enumerate(names):
        lengths = pc.utf8_length(chunkwise(as_text, sample.column(col)))
        widest = pc.max(lengths).as_py() or 0
        sheet.set_column(
            col, col, min(max(len(name) + 3, widest + 1, _MIN_WIDTH), _MAX_WIDTH), plain
        )
    # A cell without a format of its own takes its column's ("@"); coloured cells name one.
    looks: list[dict[str, Any] | None] = [None] * len(names)
    if _STATUS_COLUMN in names:
        looks[names.index(_STATUS_COLUMN)] = _formats(workbook, text, STATUS_COLOURS)
    if _CHANGE_COLUMN in names:
        looks[names.index(_CHANGE_COLUMN)] = _formats(workbook, text, CHANGE_COLOURS)
    write = sheet.write_string
    for start in range(0, len(table), _BATCH_ROWS):
        batch = table.slice(start, _BATCH_ROWS)
        columns = [cell_texts(batch.column(col)) for col in range(len(names))]
        for row, values in enumerate(zip(*columns), start=start + 1):
            for col, value in enumerate(values):
                if value:  # an empty cell is left out
                    look = looks[col]
                    write(row, col, value, look.get(value) if look is not None else None)


def _formats(
    workbook: Any, base: Mapping[str, Any], colours: Mapping[str, tuple[str, ...] | Any]
) -> dict[str, Any]:
    """One cell format per value: its fill and font colour (bold where the colours say)."""
    made = {}
    for value, (fill, font, *bold) in colours.items():
        made[value] = workbook.add_format(
            {**base, "bg_color": fill, "font_color": font, "bold": bool(bold and bold[0])}
        )
    return made


def _write_summary(
    workbook: Any,
    title: str,
    rows: int,
    counts: Mapping[Status, int],
    changes: Mapping[Change, int],
    facts: Sequence[tuple[str, str]],
    plan: bool,
) -> None:
    """Sheet ``Summary``: the title; what the command ran against (API, user, input's
    SHA-256, run folder); a plan's words on what ``run --plan`` will do; rows per status and
    per change; a chart (a plan's: rows by change; any other's: rows by status).

    Counts are numbers (the chart needs them); every status and change is listed, zero or
    not, then any other key the caller passed, so nothing counted goes missing. Rows are
    written top to bottom (``constant_memory``).
    """
    sheet = workbook.add_worksheet("Summary", worksheet_class=_TextWorksheet)
    sheet.ignore_errors({"number_stored_as_text": _EVERY_CELL})
    sheet.set_landscape()
    sheet.fit_to_pages(1, 1)  # printed or saved as PDF for a sign-off: one page, chart whole
    bold = workbook.add_format({"bold": True})
    head = workbook.add_format({"bold": True, "bottom": 1})
    status_fills = _formats(workbook, {}, STATUS_COLOURS)
    change_fills = _formats(workbook, {}, CHANGE_COLOURS)
    sheet.write_string(0, 0, cut(title), workbook.add_format({"bold": True, "font_size": 14}))
    row = _write_facts(sheet, facts, bold)
    if plan:
        row = _write_plan_words(sheet, row, changes, counts, bold, head)
    statuses = _listing(tuple(Status), counts)
    first = row + 2  # zero-based row of the first status
    _write_counts(sheet, first - 1, "status", statuses, counts, head, status_fills)
    total_row = first + len(statuses)
    sheet.write_string(total_row, 0, "all rows", bold)
    sheet.write_number(total_row, 1, rows, bold)
    kinds = _listing(tuple(c for c in Change if c is not Change.NONE), changes)
    _write_counts(sheet, total_row + 2, "change", kinds, changes, head, change_fills)
    labels = [*statuses, *kinds, "all rows", "status", "change", *(f for f, _ in facts)]
    sheet.set_column(0, 0, min(max(len(s) for s in labels) + 2, _MAX_WIDTH))
    sheet.set_column(1, 1, 10)

    if plan:
        top = total_row + 2 + len(kinds) + 2
        fills = (change_fills, status_fills)
        span, points = _write_plan_bars(sheet, top, changes, counts, head, fills)
        name = "Rows by change: what run --plan will do"
    else:
        points = [_point(STATUS_COLOURS.get(s, ("#BFBFBF", "#404040"))) for s in statuses]
        span, name = (first, first + len(statuses) - 1), "Rows by status"
    sheet.insert_chart(first - 1, 3, _chart(workbook, name, span, points))


def _chart(workbook: Any, name: str, span: tuple[int, int], points: list[Any]) -> Any:
    """The Summary's column chart of the counts in rows ``span`` (labels in column A)."""
    chart = workbook.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": "rows",
            "categories": "=Summary!" + xl_range_abs(span[0], 0, span[1], 0),
            "values": "=Summary!" + xl_range_abs(span[0], 1, span[1], 1),
            "points": points,
            "data_labels": {"value": True},
        }
    )
    chart.set_title({"name": name})
    chart.set_legend({"none": True})
    chart.set_y_axis({"num_format": "#,##0", "min": 0})
    return chart


def _write_facts(sheet: Any, facts: Sequence[tuple[str, str]], bold: Any) -> int:
    """What the command ran against, one fact a row from row 2; the next free row."""
    row = 2
    for label, value in facts:
        sheet.write_string(row, 0, cut(label), bold)
        sheet.write_string(row, 1, cut(value))
        row += 1
    return row


def _write_plan_words(
    sheet: Any,
    row: int,
    changes: Mapping[Change, int],
    counts: Mapping[Status, int],
    bold: Any,
    head: Any,
) -> int:
    """A plan's words on what ``run --plan`` will do (replacements and refusals bold)."""
    row += 1
    sheet.write_string(row, 0, "What run --plan of this plan will do", head)
    for line in plan_lines(changes, counts):
        row += 1
        strong = "replace" in line or "refuses" in line
        sheet.write_string(row, 0, cut(line), bold if strong else None)
    return row + 1


def _write_plan_bars(
    sheet: Any,
    top: int,
    changes: Mapping[Change, int],
    counts: Mapping[Status, int],
    head: Any,
    fills: tuple[dict[str, Any], dict[str, Any]],
) -> tuple[tuple[int, int], list[dict[str, Any]]]:
    """A plan's chart data, rows by change from row ``top``: (its row span, bar colours)."""
    change_fills, status_fills = fills
    bars = list(PLAN_BARS)
    if changes.get(Change.UNKNOWN):
        bars.append(("unknown", "unknown"))
    if unread(counts):
        bars.append(("not read", "not_read"))
    missing = counts.get(Status.NOT_FOUND, 0)
    tally: dict[str, int] = dict(changes.items())
    tally.update(not_found=missing, not_read=unread(counts))
    sheet.write_string(top, 0, "run --plan", head)
    sheet.write_string(top, 1, "rows", head)
    for offset, (label, key) in enumerate(bars, start=1):
        look = change_fills.get(key) or status_fills.get(_BAR_STATUS.get(key, ""))
        sheet.write_string(top + offset, 0, label, look)
        sheet.write_number(top + offset, 1, int(tally.get(key, 0)))
    points = [
        _point(CHANGE_COLOURS.get(key) or STATUS_COLOURS[_BAR_STATUS[key]]) for _, key in bars
    ]
    return (top + 1, top + len(bars)), points


def _listing(known: Sequence[K], counts: Mapping[K, int]) -> list[K]:
    """The known keys in their order, then any others the counts hold."""
    return [*known, *sorted(k for k in counts if k not in known)]


def _write_counts(
    sheet: Any,
    row: int,
    label: str,
    keys: Sequence[K],
    counts: Mapping[K, int],
    head: Any,
    fills: Mapping[str, Any],
) -> None:
    """A two-column table below ``row``: each key and its count (0 when absent)."""
    sheet.write_string(row, 0, label, head)
    sheet.write_string(row, 1, "rows", head)
    for offset, key in enumerate(keys, start=1):
        sheet.write_string(row + offset, 0, cut(key) or "(none)", fills.get(key))
        sheet.write_number(row + offset, 1, int(counts.get(key, 0)))


def _point(colours: Sequence[Any]) -> dict[str, Any]:
    """A chart column in the colours of its cells."""
    fill, font = colours[0], colours[1]
    return {"fill": {"color": fill}, "border": {"color": font}}


def _close(workbook: Any) -> None:
    """Close the workbook; XlsxWriter wraps I/O errors in its own class, unwrap them."""
    try:
        workbook.close()
    except XlsxFileError as exc:
        cause = exc.args[0] if exc.args else None
        raise (cause if isinstance(cause, OSError) else OSError(str(exc))) from exc
