"""Make ``sample_data/latch-sample.xlsx`` from ``sample_data/latch-sample.csv``.

The workbook holds what an ops person's Excel file would: fusebillId cells that are plain
whole numbers are stored as NUMBERS (``1000003.0`` as the number 1000003), everything else
as TEXT (geotabIds keep their leading zeros and spaces; ``=HYPERLINK(...)`` stays text, not a
formula), and the CSV's blank row stays an empty row, so spreadsheet row numbers match.

Usage: python scripts/make_sample_xlsx.py [--csv PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import re
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "sample_data" / "latch-sample.csv"
DEFAULT_XLSX = ROOT / "sample_data" / "latch-sample.xlsx"
_WHOLE = re.compile(r"-?[0-9]+(\.0)?")
_FIXED_TIME = datetime.datetime(2024, 1, 1)  # docProps times: same bytes of metadata each run


def number_or_text(text: str) -> int | str:
    """A plain whole number becomes an int (``1000003.0`` -> 1000003); anything else stays text."""
    if _WHOLE.fullmatch(text) and len(text.lstrip("-").split(".")[0]) <= 15:  # Excel's precision
        return int(text.split(".")[0])
    return text


def make(csv_path: Path = DEFAULT_CSV, xlsx_path: Path = DEFAULT_XLSX) -> Path:
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.reader(handle))
    header = records[0]
    fusebill_col = header.index("Fusebill ID")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Latch"
    for row_number, record in enumerate(records, start=1):
        if not any(cell.strip() for cell in record):
            continue  # a blank row stays blank: later rows keep their numbers
        for col_number, text in enumerate(record, start=1):
            if text == "":
                continue
            is_id = row_number > 1 and col_number - 1 == fusebill_col
            cell = sheet.cell(row=row_number, column=col_number)
            cell.value = number_or_text(text) if is_id else text
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, even when it starts with "=" (not a formula)
                cell.number_format = "@"
    workbook.properties.created = _FIXED_TIME
    workbook.properties.modified = _FIXED_TIME
    xlsx_path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(xlsx_path)
    return xlsx_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_XLSX)
    args = parser.parse_args()
    print(make(args.csv, args.out))


if __name__ == "__main__":
    main()
