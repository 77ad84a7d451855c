"""Compare, cell by cell, what batch-latch's XLSX reader shows with LibreOffice's "save
cell contents as shown" CSV export of the same workbooks.

LibreOffice renders number formats independently of this project, so a cell on which the
two disagree is worth a look (issue #29 was found this way). Not a test: it needs
LibreOffice (``soffice``) and is never run in CI nor imported by the tests.

    python scripts/compare_with_libreoffice.py BOOK.xlsx [BOOK.xlsx ...] [--show N]
    python scripts/compare_with_libreoffice.py --craft DIR   # write the crafted books, compare

Both sides read the first visible sheet. Known, deliberate differences are normalised
before comparing: batch-latch shows times as ISO 8601 (``07:00``, 24-hour clock) where
LibreOffice follows the format (``7:00``, ``7:00 AM``). Everything else is compared exactly.
Prints one line per differing cell (up to ``--show``) and, last, ``N cells compared, M
differ``.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batch_latch.sheet import xlsx_reader  # noqa: E402
from batch_latch.sheet.grid import column_label  # noqa: E402

# LibreOffice's CSV filter options: comma, double quote, UTF-8, from line 1, default cell
# formats, language 0, quoted fields not as text, special numbers detected, and token 9
# "save cell contents as shown".
_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true"
_TIME = re.compile(r"(\d{1,3}):(\d{2})((?::\d{2})?(?:\.\d+)?)(?:\s*([AaPp])\.?[Mm]?\.?)?")

#: Formats and values for ``--craft``: the formats of issue #29 and their neighbours.
CRAFT_FORMATS = [
    "[=0]?;[<4.1667][hh]:mm:ss;[hh]:mm",
    "[<1]h:mm;0",
    "0;[h]:mm",
    "0.00;h:mm AM/PM",
    "[<0.001]mm:ss.0;0.00",
    "[>=1]yyyy-mm-dd;0.00",
    "h:mm",
    "hh:mm:ss",
    "[h]:mm:ss",
    "[h]:mm",
    "mm:ss",
    "[mm]:ss",
    "mm:ss.0",
    "yyyy-mm-dd",
    "yyyy-mm-dd hh:mm",
    "0000000",
    "#,##0.00",
    "[<100000]00000;0",
    "# ?/?",
    "0.0%",
    '"GT"0000',
    '0;-0;"zero"',
    "General",
]
CRAFT_VALUES = [0, 0.2916666666666667, 0.75, -0.5, 5, 45000.5, -1.25, 42, 1234.5, 0.0001]


def libreoffice_cells(book: Path, soffice: str) -> dict[tuple[int, str], str]:
    """(row, column label) -> LibreOffice's text, from its as-shown CSV export."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [soffice, "--headless", "--convert-to", _FILTER, "--outdir", out, str(book)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        exported = Path(out) / (book.stem + ".csv")
        with exported.open(encoding="utf-8", newline="") as handle:
            records = list(csv.reader(handle))
    return {
        (r, column_label(c)): text
        for r, record in enumerate(records, start=1)
        for c, text in enumerate(record)
        if text != ""
    }


def batch_latch_cells(book: Path) -> dict[tuple[int, str], str]:
    """(row, column label) -> what batch-latch's reader shows."""
    grid = xlsx_reader.read(book, None)
    out = {}
    for label, column in zip(grid.labels, grid.columns):
        for row, text in zip(grid.rows.tolist(), column.to_pylist()):
            if text:
                out[(int(row), label)] = text
    return out


def normalised(text: str) -> str:
    """Times as a 24-hour clock with two-digit hours (``7:00 PM`` -> ``19:00``)."""

    def clock(match: re.Match[str]) -> str:
        hours = int(match.group(1))
        half = (match.group(4) or "").upper()
        if half == "P" and hours < 12:
            hours += 12
        elif half == "A" and hours == 12:
            hours = 0
        return f"{hours:02d}:{match.group(2)}{match.group(3)}"

    return _TIME.sub(clock, text.strip())


def compare(book: Path, soffice: str, show: int) -> tuple[int, int]:
    """(cells compared, cells that differ) for one workbook; prints the differences."""
    ours, theirs = batch_latch_cells(book), libreoffice_cells(book, soffice)
    differ = 0
    for key in sorted(set(ours) | set(theirs)):
        mine, lo = ours.get(key, ""), theirs.get(key, "")
        if normalised(mine) == normalised(lo):
            continue
        differ += 1
        if differ <= show:
            row, label = key
            print(f"{book.name} {label}{row}: batch-latch {mine!r}, LibreOffice {lo!r}")
    return len(set(ours) | set(theirs)), differ


def craft(folder: Path) -> list[Path]:
    """Write the crafted workbooks: one row per format, its values across, the format's
    code in column A (as text); a 1904-calendar copy beside it."""
    import xlsxwriter

    folder.mkdir(parents=True, exist_ok=True)
    books = []
    for name, date1904 in (("formats-1900.xlsx", False), ("formats-1904.xlsx", True)):
        path = folder / name
        book = xlsxwriter.Workbook(str(path), {"date_1904": date1904})
        sheet = book.add_worksheet("Formats")
        for r, code in enumerate(CRAFT_FORMATS):
            sheet.write_string(r, 0, code)
            fmt = book.add_format({"num_format": code})
            for c, value in enumerate(CRAFT_VALUES, start=1):
                sheet.write_number(r, c, value, fmt)
        book.close()
        books.append(path)
    return books


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("books", nargs="*", type=Path)
    parser.add_argument("--craft", type=Path, help="write the crafted workbooks here too")
    parser.add_argument("--show", type=int, default=50, help="differences printed at most")
    parser.add_argument("--soffice", default=shutil.which("soffice") or "soffice")
    args = parser.parse_args()
    books = list(args.books) + (craft(args.craft) if args.craft else [])
    if not books:
        parser.error("give .xlsx files, or --craft DIR")
    compared = differ = 0
    for book in books:
        n, m = compare(book, args.soffice, args.show)
        compared, differ = compared + n, differ + m
    print(f"{compared} cells compared, {differ} differ ({len(books)} workbooks)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
