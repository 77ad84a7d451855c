"""Read an ops spreadsheet (CSV or XLSX) into text columns, keeping spreadsheet row numbers.

Every cell stays text: ``0909909`` must reach Fusebill as ``0909909``. CSV goes through
Arrow's multi-threaded reader (about 0.3 s for a million rows); files it cannot take as
they are (ragged rows, blank lines) go through the standard ``csv`` module instead, which
is slower but accepts anything and loses nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batch_latch.errors import ConfigError, InputError


def _choose_memory_pool() -> None:
    """jemalloc (else the system allocator) instead of Arrow's default mimalloc: with a
    million rows mimalloc spends over a second in the kernel returning and re-faulting pages
    (measured: a re-run of 1M rows took 3.3-4.0 s with it, 3.0-3.2 s with jemalloc).
    ``ARROW_DEFAULT_MEMORY_POOL`` set by the user still wins."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow build without jemalloc (macOS, Windows)
        pa.set_memory_pool(pa.system_memory_pool())


_choose_memory_pool()

FUSEBILL_ALIASES = ("fusebillid", "fusebillcustomerid")
GEOTAB_ALIASES = ("geotabid", "geotabresellercustomerid")
DELIMITERS = (",", ";", "\t")
#: Characters that make a spreadsheet treat a cell as a formula; see ``report.escape_formula``.
FORMULA_STARTS = "=+-@\t\r\n"
#: A cell our reports escaped: one or more ``'`` before a formula character. The report adds
#: one ``'`` to any cell matching ``^'*[=+\-@\t\r\n]`` and the loader removes one, so a cell
#: that really started with ``'=`` survives the round trip too.
_UNESCAPE = re.compile(r"^'+[=+\-@\t\r\n]")
_SNIFF_BYTES = 64 * 1024
# Arrow's message for a cell that is not UTF-8 (a parse error starts "CSV parse error").
_ARROW_NOT_UTF8 = re.compile(r"In CSV column #\d+: CSV conversion error to string: invalid UTF8")


@dataclass(frozen=True)
class Sheet:
    """The input as text columns; ``rows`` are spreadsheet row numbers (header = 1)."""

    path: Path
    rows: pa.Array  # int64, one per non-blank data row
    fusebill: pa.Array  # raw text of the fusebillId cells
    geotab: pa.Array  # raw text of the geotabId cells
    fusebill_header: str
    geotab_header: str
    extras: dict[str, pa.Array]  # every other column, by (unique) header, in input order

    def __len__(self) -> int:
        return len(self.rows)


def load(
    path: Path,
    *,
    sheet: str | None = None,
    fusebill_column: str | None = None,
    geotab_column: str | None = None,
) -> Sheet:
    """Load ``path``; raise :class:`InputError` with one line for anything file-level."""
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if not path.is_file():
        raise InputError(f"input is not a file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        header, columns = _read_xlsx(path, sheet)
    elif suffix == ".csv":
        if sheet is not None:
            raise ConfigError("--sheet applies to .xlsx files only; this input is a .csv")
        header, columns = _read_csv(path)
    elif suffix == ".xls":
        raise InputError(
            f"old Excel .xls files are not supported: save {path.name} as .xlsx or .csv"
        )
    else:
        raise InputError(
            f"unsupported file type '{path.suffix}' for {path.name}: use .csv or .xlsx"
        )
    return _assemble(path, header, columns, fusebill_column, geotab_column)


# --- CSV -----------------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[pa.Array]]:
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise InputError(f"{path.name} is empty: expected a header row and data rows")
    encoding = _guess_encoding(head)
    sample = head.decode(encoding, errors="replace").lstrip("\ufeff")
    delimiter = _sniff_delimiter(sample)
    width = _header_width(sample, delimiter)
    try:
        try:
            table = _read_csv_arrow(str(path), delimiter, width)
        except _NotUtf8:
            if encoding == "utf-8-sig":
                raise InputError(_bad_utf8(path)) from None
            encoding = "cp1252"
            try:
                text = _decode_cp1252(path.read_bytes())
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
            table = _read_csv_arrow(pa.BufferReader(text.encode("utf-8")), delimiter, width)
    except _NotSimple:
        return _read_csv_python(path, encoding, delimiter)
    header = [table.column(i)[0].as_py() for i in range(table.num_columns)]
    columns = [table.column(i).slice(1).combine_chunks() for i in range(table.num_columns)]
    return header, columns


class _NotSimple(Exception):
    """The fast reader cannot take this file as it is; use the tolerant one."""


class _NotUtf8(Exception):
    """The file is not UTF-8: read it as Windows-1252, which decodes any byte."""


def _guess_encoding(head: bytes) -> str:
    """A BOM settles it; otherwise try UTF-8 first (the reader says if it is not)."""
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"


#: The five bytes Python's cp1252 leaves undefined, as ``surrogateescape`` renders them.
_CP1252_HOLES = {0xDC00 + b: b for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


def _decode_cp1252(raw: bytes) -> str:
    """Windows-1252 for every byte: the five undefined ones become C1 controls (as browsers
    do), so they are kept visibly wrong (a geotabId with one is invalid), never a crash."""
    return raw.decode("cp1252", errors="surrogateescape").translate(_CP1252_HOLES)


def _bad_utf8(path: Path) -> str:
    return f"{path.name} starts with a UTF-8 byte-order mark but is not valid UTF-8: save it again"


def _first_record(sample: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    except csv.Error:
        return sample.splitlines()[0].split(delimiter) if sample else []


def _sniff_delimiter(sample: str) -> str:
    """Pick the delimiter whose header split finds our columns, else the most frequent one."""
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        fields = _first_record(sample, delimiter)
        keys = {_normalise(f) for f in fields}
        found = sum(1 for names in (FUSEBILL_ALIASES, GEOTAB_ALIASES) if keys & set(names))
        score = (found, len(fields))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _header_width(sample: str, delimiter: str) -> int:
    return max(1, len(_first_record(sample, delimiter)))


def _read_csv_arrow(source: str | pa.NativeFile, delimiter: str, width: int) -> pa.Table:
    """Read UTF-8 ``source`` (a path or a buffer) as text columns, if it is simple enough."""
    # No ``invalid_row_handler``: Arrow prints an "Exception ignored" traceback on stderr
    # when a handler raises, or when a ragged row is not UTF-8; a ragged row is an error.
    names = [f"c{i}" for i in range(width)]
    read = pacsv.ReadOptions(column_names=names, encoding="utf8")
    parse = pacsv.ParseOptions(
        delimiter=delimiter,
        newlines_in_values=True,
        ignore_empty_lines=False,
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            source, read_options=read, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid as exc:
        if _ARROW_NOT_UTF8.match(str(exc)):
            raise _NotUtf8 from None
        raise _NotSimple from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    if table.num_rows == 0:
        raise _NotSimple
    return table


def _read_csv_python(path: Path, encoding: str, delimiter: str) -> tuple[list[str], list[pa.Array]]:
    csv.field_size_limit(1 << 30)
    try:
        raw = path.read_bytes()
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            if encoding == "utf-8-sig":
                raise InputError(_bad_utf8(path)) from None
            text = _decode_cp1252(raw)
        records = list(
            csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
        )
    except csv.Error as exc:
        raise InputError(f"cannot parse {path.name} as CSV: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not records:
        raise InputError(f"{path.name} is empty: expected a header row and data rows")
    return _columns_from_records(records)


# --- XLSX ----------------------------------------------------------------------------------


def _read_xlsx(path: Path, sheet: str | None) -> tuple[list[str], list[pa.Array]]:
    import zipfile

    import openpyxl  # imported here: it costs start-up time that CSV runs need not pay

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise InputError(f"cannot open {path.name} as an Excel workbook ({_short(exc)})") from None
    except Exception as exc:  # openpyxl raises many kinds on damaged files
        raise InputError(f"cannot open {path.name} as an Excel workbook ({_short(exc)})") from None
    try:
        if sheet is None:
            if not workbook.worksheets:
                raise InputError(f"{path.name} has no worksheets")
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            names = ", ".join(repr(n) for n in workbook.sheetnames)
            raise InputError(f"no sheet named {sheet!r} in {path.name}; its sheets are {names}")
        if not hasattr(worksheet, "iter_rows"):
            raise InputError(f"sheet {worksheet.title!r} in {path.name} is a chart, not a table")
        try:
            records = [[_cell_text(cell) for cell in row] for row in worksheet.iter_rows(min_row=1)]
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"cannot read {path.name} as an Excel workbook ({_short(exc)})"
            ) from None
    finally:
        workbook.close()
    if not records:
        raise InputError(f"sheet {worksheet.title!r} of {path.name} is empty")
    return _columns_from_records(records)


def _cell_text(cell: object) -> str:
    """A cell's value as the text ops see in Excel, never a float artefact like ``1e+06``."""
    value = getattr(cell, "value", None)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return _zero_pad(str(value), cell)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return _zero_pad(str(int(value)), cell)
        return repr(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _zero_pad(text: str, cell: object) -> str:
    """Honour a ``0000000`` number format, so a displayed ``0909909`` stays ``0909909``."""
    fmt = getattr(cell, "number_format", None)
    if isinstance(fmt, str) and fmt and set(fmt) == {"0"} and not text.startswith("-"):
        return text.zfill(len(fmt))
    return text


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


# --- shared --------------------------------------------------------------------------------


def _columns_from_records(records: Sequence[Sequence[str]]) -> tuple[list[str], list[pa.Array]]:
    """Pad ragged rows; cells beyond the header get columns of their own (nothing is lost)."""
    header = list(records[0])
    width = max(len(header), max((len(r) for r in records), default=0))
    header += [""] * (width - len(header))
    data = records[1:]
    columns = [
        pa.array([r[i] if i < len(r) else "" for r in data], type=pa.string()) for i in range(width)
    ]
    return header, columns


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-\ufeff]+", "", name).lower()


def _unescape(column: pa.Array) -> pa.Array:
    """Undo exactly one leading ``'`` that our reports put before a formula-like cell."""
    if not pc.any(pc.starts_with(column, "'")).as_py():  # a cheap look first
        return column
    marked = pc.match_substring_regex(column, _UNESCAPE.pattern)
    if not pc.any(marked).as_py():
        return column
    return pc.if_else(marked, pc.utf8_slice_codeunits(column, 1), column)


def _find_column(
    header: Sequence[str], wanted: str | None, aliases: Iterable[str], label: str, option: str
) -> int:
    if wanted is not None:
        exact = [i for i, h in enumerate(header) if h.strip() == wanted.strip()]
        loose = [i for i, h in enumerate(header) if _normalise(h) == _normalise(wanted)]
        hits = exact or loose
        if not hits:
            raise InputError(
                f"column {wanted!r} (from {option}) not found; the columns are {_listing(header)}"
            )
        return hits[0]
    keys = set(aliases)
    hits = [i for i, h in enumerate(header) if _normalise(h) in keys]
    if not hits:
        raise InputError(
            f"no {label} column found; the columns are {_listing(header)}; "
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
    path: Path,
    header: list[str],
    columns: list[pa.Array],
    fusebill_column: str | None,
    geotab_column: str | None,
) -> Sheet:
    header = [_UNESCAPE.sub(lambda m: m.group(0)[1:], h) for h in header]
    if not any(h.strip() for h in header):
        raise InputError(f"{path.name} has no header: its first row is empty")
    fid = _find_column(header, fusebill_column, FUSEBILL_ALIASES, "fusebillId", "--fusebill-column")
    gid = _find_column(header, geotab_column, GEOTAB_ALIASES, "geotabId", "--geotab-column")
    if fid == gid:
        raise InputError(f"the fusebillId and geotabId columns are the same column {header[fid]!r}")
    rows = pa.array(np.arange(2, 2 + (len(columns[0]) if columns else 0), dtype=np.int64))
    blank = None
    for column in columns:
        empty = pc.or_(pc.equal(pc.utf8_length(column), 0), pc.utf8_is_space(column))
        blank = empty if blank is None else pc.and_(blank, empty)
    if blank is not None and pc.any(blank).as_py():
        keep = pc.invert(blank)
        rows = rows.filter(keep)
        columns = [c.filter(keep) for c in columns]
    if len(rows) == 0:
        raise InputError(f"{path.name} has a header but no data rows")
    columns = [_unescape(c) for c in columns]
    others = [i for i in range(len(header)) if i not in (fid, gid)]
    # A trailing delimiter makes a nameless, empty column: not worth carrying.
    others = [
        i for i in others if header[i].strip() or pc.any(pc.not_equal(columns[i], "")).as_py()
    ]
    names = _unique_names([header[i] if header[i].strip() else f"column_{i + 1}" for i in others])
    return Sheet(
        path=path,
        rows=rows,
        fusebill=columns[fid],
        geotab=columns[gid],
        fusebill_header=header[fid],
        geotab_header=header[gid],
        extras=dict(zip(names, (columns[i] for i in others))),
    )
