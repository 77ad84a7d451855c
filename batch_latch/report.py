"""Write results.csv, failed.csv and summary.json, each atomically, safe to open in Excel.

Arrow's CSV writer does a million rows in well under a second. Every file is written to
a temporary name, flushed, synced and renamed over the old one (``os.replace``), so a
crash mid-write leaves the previous report, never half of a new one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batch_latch.errors import BatchLatchError

STATUSES = ("valid", "success", "not_found", "failed", "invalid", "duplicate", "pending")
FAILED_STATUSES = ("invalid", "not_found", "failed", "pending")
TOOL_COLUMNS = (
    "row",
    "fusebillId",
    "geotabId",
    "status",
    "http_status",
    "attempts",
    "message",
    "error_key",
    "finished_at",
)
# A cell a spreadsheet would run as a formula, or one that already starts with ``'`` before
# such a character: it gets one more ``'``, so the loader (which removes one) gives it back.
_FORMULA = r"^'*[=+\-@\t\r\n]"
_FORMULA_FIRST = ("=", "+", "-", "@", "\t", "\r", "\n", "'")  # first characters _FORMULA can match
_BOM = b"\xef\xbb\xbf"


class ReportError(BatchLatchError):
    """The reports could not be written (disk full, no permission...)."""


@dataclass(frozen=True)
class ResultColumns:
    """The tool's own columns of results.csv, one entry per non-blank input row."""

    row: pa.Array  # int64
    fusebillId: pa.Array
    geotabId: pa.Array
    status: pa.Array  # string
    http_status: pa.Array  # int64, null when nothing was answered
    attempts: pa.Array  # int64
    message: pa.Array  # string
    error_key: pa.Array  # string
    finished_at: pa.Array  # string (ISO 8601 UTC) or ""


@dataclass(frozen=True)
class Summary:
    input: str
    dry_run: bool
    rows: int
    counts: dict[str, int]
    requests: int
    started_at: str
    finished_at: str
    exit_code: int


@dataclass(frozen=True)
class ReportPaths:
    results: Path
    failed: Path
    summary: Path


def count_statuses(status: pa.Array) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for item in pc.value_counts(status).to_pylist():
        # A dictionary-coded column may hold one value under several codes: add them up.
        counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts


def escape_formula(column: pa.Array) -> pa.Array:
    """Put ``'`` before a cell a spreadsheet would run as a formula (OWASP CSV injection)."""
    if len(column) == 0:
        return column
    if pa.types.is_dictionary(column.type):  # escape each distinct value once
        return pa.DictionaryArray.from_arrays(column.indices, escape_formula(column.dictionary))
    # A few one-byte prefix tests cost a fraction of one regex pass over a million cells.
    if not any(pc.any(pc.starts_with(column, c)).as_py() for c in _FORMULA_FIRST):
        return column
    risky = pc.match_substring_regex(column, _FORMULA)
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def _escape_name(name: str) -> str:
    return "'" + name if re.match(_FORMULA, name) else name


def output_names(extra_names: list[str]) -> list[str]:
    """Input columns keep their names unless ours took them: then ``input_<name>``."""
    taken = set(TOOL_COLUMNS)
    names = []
    for name in extra_names:
        candidate = name
        while candidate in taken:
            candidate = f"input_{candidate}"
        taken.add(candidate)
        names.append(candidate)
    return names


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def build_table(columns: ResultColumns, extras: Mapping[str, pa.Array]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for name in TOOL_COLUMNS:
        value = getattr(columns, name)
        arrays[name] = escape_formula(value) if _is_text(value.type) else value
    for name, value in zip(output_names(list(extras)), extras.values()):
        arrays[_escape_name(name)] = escape_formula(value)
    return pa.table(arrays)


def write_reports(
    out_dir: Path, columns: ResultColumns, extras: Mapping[str, pa.Array], summary: Summary
) -> ReportPaths:
    paths = ReportPaths(
        results=out_dir / "results.csv",
        failed=out_dir / "failed.csv",
        summary=out_dir / "summary.json",
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        table = build_table(columns, extras)
        _write_csv(paths.results, table)
        failed = pc.is_in(columns.status, value_set=pa.array(FAILED_STATUSES))
        _write_csv(paths.failed, table.filter(failed))
        text = json.dumps(asdict(summary), indent=2, ensure_ascii=False) + "\n"
        _atomic_write(paths.summary, lambda sink: sink.write(text.encode("utf-8")))
    except OSError as exc:
        where = exc.filename or out_dir
        raise ReportError(f"cannot write reports to {where}: {exc.strerror or exc}") from None
    return paths


def _write_csv(path: Path, table: pa.Table) -> None:
    """Unquoted when no cell needs quotes (a million-row report is ~10 % smaller, and on a
    slow disk bytes are time); Arrow refuses a cell with a comma, quote or line break, and
    then the file is written again with every text cell quoted."""
    for quoting in ("none", "needed"):
        options = pacsv.WriteOptions(include_header=True, quoting_style=quoting)

        def write(sink: pa.NativeFile, options: pacsv.WriteOptions = options) -> None:
            sink.write(_BOM)  # Excel reads UTF-8 only when the file starts with a BOM
            pacsv.write_csv(table, sink, write_options=options)

        try:
            _atomic_write(path, write)
            return
        except pa.ArrowInvalid:
            if quoting == "needed":
                raise


def _atomic_write(path: Path, write: Callable[[pa.NativeFile], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink:
            write(sink)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
