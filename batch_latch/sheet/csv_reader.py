"""A CSV file as text records, into a :class:`Grid` (record 1 = the first line, or the line
after Excel's ``sep=X`` line, which Excel does not show as a row either).

Encodings: a UTF-8 BOM or none; a UTF-16 BOM (Excel's "Unicode Text", PowerShell ``>``);
else UTF-8 if it decodes, else Windows-1252. A file that holds valid multi-byte UTF-8 and
also some invalid bytes is a UTF-8 file with damage, not a Windows-1252 one: reading it as
Windows-1252 would turn every accent into mojibake without a word, so it is an error naming
the first bad line. ``encoding=`` overrides all of this. NUL padding and one Ctrl-Z (0x1A)
at the end are dropped. Simple files go through Arrow's multi-threaded reader (~0.3 s a
million rows); ragged ones through the standard ``csv`` module, which accepts anything.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from batch_latch.errors import ConfigError, InputError
from batch_latch.sheet.grid import Grid, column_label, from_records
from batch_latch.sheet.names import FUSEBILL_ALIASES, GEOTAB_ALIASES, normalise

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", "\\t": "\t"}
_SNIFF_BYTES = 64 * 1024
_SEP_LINE = re.compile(rb"sep=([^\r\n])\r?\n", re.IGNORECASE)
_BLANK = re.compile(rb"[ \t\r\n]*")
_VALID_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
#: The five bytes Python's cp1252 leaves undefined, as ``surrogateescape`` renders them.
_CP1252_HOLES = {0xDC00 + b: b for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


def parse_delimiter(value: str | None) -> str | None:
    """``,`` ``;`` ``tab`` ``|`` (or a name, or the character itself) -> the character."""
    if value is None:
        return None
    key = value.strip().lower() if value.strip() else value
    char = _DELIMITER_NAMES.get(key, value)
    if len(char) != 1 or char in '\r\n"':
        raise ConfigError(f"--delimiter {value!r} is not usable: give , ; tab or |")
    return char


def check_encoding(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ConfigError(
            f"--encoding {name!r} is not an encoding Python knows: try utf-8, cp1252 or utf-16"
        ) from None


def read(path: Path, encoding: str | None = None, delimiter: str | None = None) -> Grid:
    encoding, delimiter = check_encoding(encoding), parse_delimiter(delimiter)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    data = _utf8(path, _trim_tail(raw), encoding)
    del raw
    if _BLANK.fullmatch(data):  # (``data.strip()`` would copy the whole file)
        raise InputError(f"{path.name} is empty: expected a header row and data rows")
    sep = _SEP_LINE.match(data[:16])
    if sep:
        data = data[sep.end() :]
        delimiter = delimiter or sep.group(1).decode("utf-8", errors="replace")
    sample = data[:_SNIFF_BYTES].decode("utf-8", errors="replace")
    delimiter = delimiter or _sniff_delimiter(sample)
    try:
        return _read_arrow(data, delimiter, _width(sample, delimiter))
    except _NotSimple:
        return _read_python(path, data, delimiter)


def _trim_tail(raw: bytes) -> bytes:
    """NUL padding (a pre-allocated file) and a final Ctrl-Z (DOS end of file) are not data."""
    trimmed = raw.rstrip(b"\x00")
    if trimmed.endswith(b"\x1a"):
        trimmed = trimmed[:-1].rstrip(b"\x00")
    # UTF-16 pads in pairs: keep an odd NUL that belongs to the last character.
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and len(trimmed) % 2:
        trimmed += b"\x00"
    return trimmed


def _utf8(path: Path, raw: bytes, encoding: str | None) -> bytes:
    """The file as UTF-8 without a BOM; UTF-8 input is only checked, not copied twice."""
    if encoding is not None:
        return _strict(path, raw, encoding).removeprefix("\ufeff").encode("utf-8")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _strict(path, raw, "utf-16").rstrip("\x00").removesuffix("\x1a")
        return text.encode("utf-8")
    body = raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw
    if _is_utf8(body):
        return body
    if raw.startswith(codecs.BOM_UTF8) or _VALID_MULTIBYTE.search(raw):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise InputError(
                f"{path.name} is UTF-8 but line {line} holds bytes that are not: fix that line "
                "(or save the file as UTF-8 again), or give --encoding if it is another encoding"
            ) from None
    # Windows-1252 for every byte: its five undefined bytes become C1 controls (as browsers
    # do), kept visibly wrong (a geotabId with one is invalid), never a crash.
    text = raw.decode("cp1252", errors="surrogateescape").translate(_CP1252_HOLES)
    return text.encode("utf-8")


def _is_utf8(data: bytes) -> bool:
    """Arrow's UTF-8 check in C++ on the bytes where they are (no copy, no str): a million
    rows (48 MB) in ~2 ms, where copying them into an array first took ~30 ms."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        whole.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _strict(path: Path, raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path.name} is not valid {encoding} at line {line}: "
            "save it again or give the right --encoding"
        ) from None


def _records(sample: str, delimiter: str, limit: int = 25) -> list[list[str]]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    out: list[list[str]] = []
    try:
        for record in reader:
            out.append(record)
            if len(out) >= limit:
                break
    except csv.Error:
        pass
    return out


def _sniff_delimiter(sample: str) -> str:
    """The delimiter whose split finds our columns in one record, else the one that gives
    the widest consistent records."""
    best, best_score = ",", (-1, -1, -1)
    for delimiter in [d for d in DELIMITERS if d in sample] or [","]:
        records = [r for r in _records(sample, delimiter) if any(f.strip() for f in r)]
        found = 0
        for record in records:
            keys = {normalise(f) for f in record}
            found = max(found, sum(1 for a in (FUSEBILL_ALIASES, GEOTAB_ALIASES) if keys & a))
        widths = [len(r) for r in records]
        common = max(set(widths), key=widths.count) if widths else 0
        score = (found, common if widths.count(common) > 1 or len(widths) == 1 else 0, common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _width(sample: str, delimiter: str) -> int:
    records = _records(sample, delimiter)
    return max(1, max((len(r) for r in records), default=1))


class _NotSimple(Exception):
    """The fast reader cannot take this file as it is; use the tolerant one."""


def _read_arrow(data: bytes, delimiter: str, width: int) -> Grid:
    # No ``invalid_row_handler``: Arrow prints an "Exception ignored" traceback on stderr
    # when a handler raises; a ragged row is an error and the tolerant reader takes over.
    names = [f"c{i}" for i in range(width)]
    read = pacsv.ReadOptions(column_names=names, encoding="utf8")
    parse = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data), read_options=read, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid:
        raise _NotSimple from None
    if table.num_rows == 0:
        raise _NotSimple
    columns = [table.column(i).combine_chunks() for i in range(table.num_columns)]
    rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return Grid(rows, columns, [column_label(i) for i in range(width)], [None] * width)


def _read_python(path: Path, data: bytes, delimiter: str) -> Grid:
    csv.field_size_limit(1 << 30)
    try:
        text = data.decode("utf-8")
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"cannot parse {path.name} as CSV: {exc}") from None
    if not records:
        raise InputError(f"{path.name} is empty: expected a header row and data rows")
    return from_records(records)
