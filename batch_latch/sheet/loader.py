"""Read an ops spreadsheet (CSV or XLSX) into text columns, keeping spreadsheet row numbers.

Every cell is the text the user sees: ``0909909`` reaches Fusebill as ``0909909``. The
readers (:mod:`batch_latch.sheet.csv_reader`, :mod:`batch_latch.sheet.xlsx_reader`) give a
grid of the
rows that hold something; this module finds the header (the first row holding both columns
among the first 20 non-blank rows), the id columns, and a fed-back report of our own.

A fed-back report (``results.csv``, ``failed.csv``, ``results.xlsx``) is recognised by its
first seven columns; its ``row`` column gives the original sheet's row numbers (a cell
that is not a whole number, such as a row the user added, keeps this file's row number), the
tool's own columns are dropped, and ``input_<name>`` columns get their name back, so a
second round trip never nests ``input_input_``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.errors import ConfigError, InputError
from batch_latch.sheet import csv_reader as csv_input
from batch_latch.sheet import formula
from batch_latch.sheet.grid import Grid, edge_bytes
from batch_latch.sheet.names import FUSEBILL_ALIASES, GEOTAB_ALIASES, normalise
from batch_latch.vocab import REPORT_HEAD, TOOL_COLUMNS

HEADER_SEARCH_ROWS = 20


@dataclass(frozen=True)
class Sheet:
    """The input as text columns; ``rows`` are spreadsheet row numbers (header = 1)."""

    path: Path
    rows: pa.Array  # int64, one per non-blank data row
    fusebill: pa.Array  # text of the fusebillId cells, as shown
    geotab: pa.Array  # text of the geotabId cells, as shown
    fusebill_header: str
    geotab_header: str
    extras: dict[str, pa.Array]  # every other column, by (unique) header, in input order
    header_row: int = 1  # spreadsheet row number of the header
    # Why a cell cannot be an id ("C7: Excel error #N/A"), "" where it is fine (XLSX only).
    fusebill_problem: pa.Array | None = None
    geotab_problem: pa.Array | None = None
    fed_back: bool = False  # a report of ours, read back (rows are the original sheet's)

    def __len__(self) -> int:
        return len(self.rows)


def load(
    path: Path,
    *,
    sheet: str | None = None,
    fusebill_column: str | None = None,
    geotab_column: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Sheet:
    """Load ``path``; raise :class:`InputError` (or :class:`ConfigError` for an option that
    does not fit the file) with one line for anything file-level."""
    if path.name.startswith("~$") and path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        real = path.with_name(path.name[2:])
        raise InputError(
            f"{path.name} is Excel's lock file (Excel keeps it while the workbook is open), "
            f"not a workbook: give {real} instead"
        )
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if not path.is_file():
        raise InputError(f"input is not a file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        if encoding is not None or delimiter is not None:
            raise ConfigError("--encoding and --delimiter apply to .csv files only")
        from batch_latch.sheet import (
            xlsx_reader as xlsx_input,  # its imports are not needed for CSV runs
        )

        grid = xlsx_input.read(path, sheet)
    elif suffix == ".csv":
        if sheet is not None:
            raise ConfigError("--sheet applies to .xlsx files only; this input is a .csv")
        grid = csv_input.read(path, encoding, delimiter)
    elif suffix == ".xls":
        raise InputError(
            f"old Excel .xls files are not supported: save {path.name} as .xlsx or .csv"
        )
    else:
        raise InputError(
            f"unsupported file type '{path.suffix}' for {path.name}: use .csv or .xlsx"
        )
    try:
        return _assemble(path, grid, fusebill_column, geotab_column)
    except InputError as exc:
        others = [n for n in grid.sheet_names[1:]] if sheet is None else []
        if others and " column found" in str(exc):
            names = ", ".join(repr(n) for n in grid.sheet_names)
            raise InputError(
                f"{exc}; that is the first sheet of {path.name}, whose sheets are {names}: "
                "choose the one with the ids with --sheet NAME"
            ) from None
        raise


def _blank(columns: Sequence[pa.Array]) -> np.ndarray:
    """Rows whose every cell is empty or whitespace. Only the rows blank in the first
    column are looked at in the next, and only cells that start with a control, a space or
    a non-ASCII byte are tested: a million rows in ~10 ms, not ~0.1 s."""
    if not columns:
        return np.zeros(0, dtype=bool)
    rows = np.arange(len(columns[0]), dtype=np.int64)
    for column in columns:
        if not len(rows):
            break
        cells = column if len(rows) == len(column) else pc.take(column, pa.array(rows))
        rows = rows[_blank_cells(cells)]
    blank = np.zeros(len(columns[0]), dtype=bool)
    blank[rows] = True
    return blank


def _blank_cells(column: pa.Array) -> np.ndarray:
    first = edge_bytes(column)
    suspect = np.flatnonzero((first < 0x21) | (first >= 0x80))  # empty, space, control, Unicode
    out = np.zeros(len(column), dtype=bool)
    if len(suspect):
        cells = pc.take(column, pa.array(suspect))
        empty = pc.or_(pc.equal(pc.utf8_length(cells), 0), pc.utf8_is_space(cells))
        out[suspect] = np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)
    return out


def _find_header(
    path: Path, grid: Grid, fusebill_column: str | None, geotab_column: str | None
) -> tuple[int, list[str], int, int]:
    """(record index, header cells, fusebill index, geotab index) of the header row."""
    window = min(len(grid), 5000)
    head = [c.slice(0, window) for c in grid.columns]
    candidates = np.flatnonzero(~_blank(head))[:HEADER_SEARCH_ROWS].tolist()
    if not candidates:
        raise InputError(f"{path.name} has no header: its first rows are empty")
    headers = [[formula.unescape_text(c[i].as_py()) for c in head] for i in candidates]
    for index, header in zip(candidates, headers):
        try:
            fid = _find_column(
                header, fusebill_column, FUSEBILL_ALIASES, "fusebillId", "--fusebill-column"
            )
            gid = _find_column(header, geotab_column, GEOTAB_ALIASES, "geotabId", "--geotab-column")
        except _NotHere:
            continue
        if fid == gid:
            raise InputError(
                f"the fusebillId and geotabId columns are the same column {header[fid]!r}"
            )
        return index, header, fid, gid
    # Not found: explain against the first non-blank row, the likeliest header.
    header = headers[0]
    _find_column(header, fusebill_column, FUSEBILL_ALIASES, "fusebillId", "--fusebill-column", True)
    _find_column(header, geotab_column, GEOTAB_ALIASES, "geotabId", "--geotab-column", True)
    raise InputError(f"{path.name}: no row holds both id columns")  # pragma: no cover


class _NotHere(Exception):
    """This row is not the header."""


def _find_column(
    header: Sequence[str],
    wanted: str | None,
    aliases: Iterable[str],
    label: str,
    option: str,
    explain: bool = False,
) -> int:
    where = f" (looked in the first {HEADER_SEARCH_ROWS} non-blank rows)"
    if wanted is not None:
        exact = [i for i, h in enumerate(header) if h.strip() == wanted.strip()]
        loose = [i for i, h in enumerate(header) if normalise(h) == normalise(wanted)]
        hits = exact or loose
        if not hits:
            if not explain:
                raise _NotHere
            raise InputError(
                f"column {wanted!r} (from {option}) not found; "
                f"the columns are {_listing(header)}{where}"
            )
        return hits[0]
    keys = set(aliases)
    hits = [i for i, h in enumerate(header) if normalise(h) in keys]
    if not hits:
        if not explain:
            raise _NotHere
        raise InputError(
            f"no {label} column found; the columns are {_listing(header)}{where}; "
            f"name it with {option} NAME"
        )
    if len(hits) > 1:
        names = " and ".join(repr(header[i]) for i in hits)
        raise InputError(f"two columns could be the {label}: {names}; choose one with {option}")
    return hits[0]


def _listing(header: Sequence[str]) -> str:
    shown = [repr(h) for h in header[:12]]
    more = f" and {len(header) - 12} more" if len(header) > 12 else ""
    return ", ".join(shown) + more if shown else "(none)"


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for index, name in enumerate(names, start=1):
        candidate = name.strip() or f"column_{index}"
        base, n = candidate, 2
        while candidate in seen:
            candidate, n = f"{base}_{n}", n + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _assemble(
    path: Path, grid: Grid, fusebill_column: str | None, geotab_column: str | None
) -> Sheet:
    try:
        at, header, fid, gid = _find_header(path, grid, fusebill_column, geotab_column)
    except InputError as exc:  # a file-level error names the file, columns not found too
        if path.name in str(exc):
            raise
        raise InputError(f"{path.name}: {exc}") from None
    columns = [c.slice(at + 1) for c in grid.columns]
    sheet_rows = grid.rows[at + 1 :]
    blank = _blank(columns)
    if blank.any():
        keep = pa.array(~blank)
        columns = [c.filter(keep) for c in columns]
        sheet_rows = sheet_rows[~blank]
    if len(sheet_rows) == 0:
        raise InputError(f"{path.name} has a header but no data rows")
    columns = [formula.unescape(c) for c in columns]
    fed_back = tuple(normalise(h) for h in header[: len(REPORT_HEAD)]) == _REPORT_HEAD
    rows = _report_rows(columns[0], sheet_rows) if fed_back else pa.array(sheet_rows)
    others = [i for i in range(len(header)) if i not in (fid, gid)]
    if fed_back:
        others = [i for i in others if normalise(header[i]) not in _OURS]
    # A trailing delimiter makes a nameless, empty column: not worth carrying.
    others = [
        i for i in others if header[i].strip() or pc.any(pc.not_equal(columns[i], "")).as_py()
    ]
    names = [header[i] if header[i].strip() else f"column_{i + 1}" for i in others]
    if fed_back:
        names = [_original_name(n) for n in names]
    return Sheet(
        path=path,
        rows=rows,
        fusebill=columns[fid],
        geotab=columns[gid],
        fusebill_header=header[fid],
        geotab_header=header[gid],
        extras=dict(zip(_unique_names(names), (columns[i] for i in others))),
        header_row=int(grid.rows[at]),
        fusebill_problem=_problems(grid, fid, at, blank, sheet_rows),
        geotab_problem=_problems(grid, gid, at, blank, sheet_rows),
        fed_back=fed_back,
    )


#: Our report columns as a header cell is recognised (like the id columns: ignoring case
#: and everything but letters and digits, so a byte-order mark or quotes an editor left in
#: a cell, ``\ufeff"row"``, still make ``row``).
_REPORT_HEAD = tuple(normalise(n) for n in REPORT_HEAD)
_OURS = {normalise(n): n for n in TOOL_COLUMNS}


def _original_name(name: str) -> str:
    """``input_status`` was our report's name for an input column ``status``."""
    key = normalise(name)
    if key.startswith("input") and key[len("input") :] in _OURS:
        return _OURS[key[len("input") :]]
    return name


def _report_rows(row_column: pa.Array, sheet_rows: np.ndarray) -> pa.Array:
    """The original row numbers from a fed-back report's ``row`` column."""
    trimmed = pc.utf8_trim_whitespace(row_column)
    whole = pc.and_(pc.ascii_is_decimal(trimmed), pc.less(pc.utf8_length(trimmed), 16))
    whole = pc.fill_null(whole, False)
    numbers = pc.cast(pc.if_else(whole, trimmed, "0"), pa.int64())
    return pc.if_else(whole, numbers, pa.array(sheet_rows, pa.int64()))


def _problems(
    grid: Grid, index: int, at: int, blank: np.ndarray, sheet_rows: np.ndarray
) -> pa.Array | None:
    """Each id cell's problem, named by its cell (``C7: Excel error #N/A``), "" if none;
    None when the reader found none in that column (every CSV)."""
    column = grid.problems[index]
    if column is None:
        return None
    column = column.slice(at + 1)
    if blank.any():
        column = column.filter(pa.array(~blank))
    texts = column.to_pylist()
    label = grid.labels[index]
    for i in np.flatnonzero(np.asarray(pc.not_equal(column, "").to_numpy(zero_copy_only=False))):
        texts[i] = f"{label}{sheet_rows[i]}: {texts[i]}"
    return pa.array(texts, pa.string())
