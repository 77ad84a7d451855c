"""Worksheet cells to the text Excel shows, and to a grid of only the rows and columns that
hold something. Whole groups of cells at once: per-cell Python only for the few cells that
need it (entities, ``_xHHHH_`` escapes, formats other than General and plain zero padding).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.sheet import numfmt, numfmt_parts
from batch_latch.sheet.grid import Grid, column_label
from batch_latch.sheet.xlsx_cells import Cells

# ECMA-376 Part 1 §22.4.2.4 (ST_Xstring): a character XML cannot hold is written _xHHHH_,
# and a literal "_x" that looks like one is protected as _x005F_ (the underscore itself).
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
# General shows integers of up to 11 characters as they are (sign included).
_PLAIN_INTEGER = r"^(0|-?[1-9][0-9]{0,9}|[1-9][0-9]{10})$"
# A grid at most this many times larger than its cells (plus a floor) is accepted.
_DENSITY_FLOOR = 20_000_000
_MAX_TEXT_BYTES = 1 << 30  # shared-string text copied into cells, in all


class SheetProblem(Exception):
    """The sheet cannot be read as a table; the message says why (the caller names the
    file and sheet)."""


def decode_escapes(text: str) -> str:
    if "_x" not in text:
        return text
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    try:  # a character outside the BMP comes as two escapes (a surrogate pair)
        return decoded.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return decoded


def _decode_xml(raw: str, inline: bool) -> str:
    """Raw XML text of a ``<v>`` or ``<is>``: entities, newline normalisation, rich runs."""
    root = ET.fromstring(f"<x>{raw}</x>")
    if not inline:
        return root.text or ""
    parts = [root.text or ""] if root.text and not len(root) else []
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name == "t" and not _inside_phonetic(root, element):
            parts.append(element.text or "")
    return "".join(parts)


def _inside_phonetic(root: ET.Element, target: ET.Element) -> bool:
    return any(target in list(p.iter()) for p in root.iter() if p.tag.endswith("rPh"))


def _texts(values: pa.Array, raw: bool, inline: bool) -> pa.Array:
    """Decode the cells that need it (XML markup or escapes); the rest pass as they are."""
    values = pc.fill_null(values, "")
    pattern = r"[&<\r]|_x[0-9A-Fa-f]{4}_" if raw else r"_x[0-9A-Fa-f]{4}_"
    needs = np.asarray(pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False))
    if not needs.any():
        return values
    out = values.to_pylist()
    for i in np.flatnonzero(needs).tolist():
        text = _decode_xml(out[i], inline) if raw else out[i]
        out[i] = decode_escapes(text)
    return pa.array(out, pa.string())


class _Builder:
    """Collects (positions, text, problem) per group of cells, then puts them in order."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.positions: list[np.ndarray] = []
        self.texts: list[pa.Array] = []
        self.problems: list[pa.Array | None] = []

    def add(self, positions: np.ndarray, text: pa.Array, problem: pa.Array | None = None) -> None:
        if len(positions):
            self.positions.append(positions)
            self.texts.append(text)
            self.problems.append(problem)

    def build(self) -> tuple[pa.Array, pa.Array | None]:
        order = np.empty(self.n, dtype=np.int64)
        done = np.concatenate(self.positions) if self.positions else np.array([], np.int64)
        order[done] = np.arange(len(done))
        index = pa.array(order)
        text = pc.take(pa.concat_arrays(self.texts), index) if self.n else pa.array([], pa.string())
        if all(p is None for p in self.problems):
            return text, None
        problems = [
            p if p is not None else pa.array([""] * len(t), pa.string())
            for p, t in zip(self.problems, self.texts)
        ]
        return text, pc.take(pa.concat_arrays(problems), index)


def _problem(texts: pa.Array, what: str) -> pa.Array:
    return pc.binary_join_element_wise(what, texts, "")


def render_cells(
    cells: Cells, strings: pa.Array, styles: list[str], date1904: bool
) -> tuple[pa.Array, pa.Array | None]:
    """Per cell, the text shown and the reason it cannot be an id ("" when it can)."""
    n = len(cells.row)
    out = _Builder(n)
    encoded = pc.dictionary_encode(pc.fill_null(cells.t, "n"))  # hashing, not sorting
    kinds = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
    # An empty <v> is a saved value only for a formula's text result (=IF(A1="","",...)),
    # which shows nothing; elsewhere (an uncalculated number, a t="s" <v/>) it is no value.
    blank_v = pc.fill_null(pc.equal(cells.v, ""), False)
    saved_empty = pc.and_(blank_v, pc.equal(pc.fill_null(cells.t, "n"), "str"))
    has_v = np.asarray(
        pc.and_(pc.is_valid(cells.v), pc.or_(pc.invert(blank_v), saved_empty)).to_numpy(
            zero_copy_only=False
        )
    )
    formula = np.asarray(cells.f.to_numpy(zero_copy_only=False), dtype=bool)
    inline = np.asarray(pc.is_valid(cells.inl).to_numpy(zero_copy_only=False))
    unsaved = formula & ~has_v & ~inline
    empty = ~has_v & ~inline & ~unsaved
    text_styles = _text_styles(styles)
    for code, kind in enumerate(encoded.dictionary.to_pylist()):
        at = np.flatnonzero((kinds == code) & ~unsaved & ~empty)
        if len(at):
            _render_kind(kind, at, cells, strings, (styles, text_styles), date1904, out)
    at = np.flatnonzero(unsaved)
    unsaved_text = pa.array(["formula with no saved value"] * len(at), pa.string())
    out.add(at, pa.array([""] * len(at), pa.string()), unsaved_text)
    at = np.flatnonzero(empty)
    out.add(at, pa.array([""] * len(at), pa.string()))
    return out.build()


def _text_styles(styles: list[str]) -> dict[int, tuple[str, ...]]:
    """Style index -> the pieces its format's text section puts around a text cell's text
    (``"GT"@``: ``("GT", "")``), for the styles whose format changes text."""
    out = {}
    for i, code in enumerate(styles):
        pieces = numfmt_parts.text_pieces(code)
        if pieces is not None and pieces != ("", ""):
            out[i] = pieces
    return out


def _text_format(texts: pa.Array, s: pa.Array, text_styles: dict[int, tuple[str, ...]]) -> pa.Array:
    """Text cells through their format's text section (``"GT"@`` on ``0042``: ``GT0042``),
    one style at a time with Arrow; cells of other styles as they are."""
    if not text_styles or not len(texts):
        return texts
    codes = np.asarray(pc.fill_null(s, -1).to_numpy(zero_copy_only=False))
    for style in set(np.unique(codes).tolist()) & set(text_styles):
        mask = codes == style
        mine = pc.filter(texts, pa.array(mask))
        pieces = text_styles[style]
        parts: list[object] = [pieces[0]]
        for piece in pieces[1:]:
            parts += [mine, piece]
        texts = pc.replace_with_mask(texts, pa.array(mask), pc.binary_join_element_wise(*parts, ""))
    return texts


def _render_kind(
    kind: str,
    at: np.ndarray,
    cells: Cells,
    strings: pa.Array,
    formats: tuple[list[str], dict[int, tuple[str, ...]]],
    date1904: bool,
    out: _Builder,
) -> None:
    index = pa.array(at)
    v = pc.take(cells.v, index)
    styles, text_styles = formats
    texts = None
    if kind == "inlineStr" or (kind != "s" and pc.all(pc.is_null(v)).as_py()):
        texts = _texts(pc.take(cells.inl, index), cells.raw, inline=True)
    elif kind == "s":
        texts = _shared(v, strings)
    elif kind == "str":
        texts = _texts(v, cells.raw, inline=False)
    if texts is not None:
        out.add(at, _text_format(texts, pc.take(cells.s, index), text_styles))
    elif kind == "b":
        shown = pc.if_else(pc.equal(v, "1"), "TRUE", "FALSE")
        out.add(at, shown, _problem(shown, "boolean "))
    elif kind == "e":
        shown = _texts(v, cells.raw, inline=False)
        out.add(at, shown, _problem(shown, "Excel error "))
    elif kind == "d":
        shown = _each_text(_texts(v, cells.raw, inline=False), numfmt.iso_text)
        out.add(at, shown, _problem(shown, "date "))
    else:
        _render_numbers(at, v, pc.take(cells.s, index), styles, date1904, out)


def _shared(v: pa.Array, strings: pa.Array) -> pa.Array:
    """Shared-string cells' texts. Their total size is checked first: a small file can
    repeat one long string in every cell (gigabytes once copied out, past Arrow's 2 GB
    string-array limit); Excel itself cuts a cell at 32,767 characters."""
    try:
        positions = pc.cast(v, pa.int64())
        sizes = pc.take(pc.binary_length(strings), positions)
    except (pa.ArrowInvalid, IndexError):
        raise SheetProblem(
            "a cell refers to a shared text that is missing: the workbook is damaged; "
            "open it in Excel, save it again and retry"
        ) from None
    if (pc.sum(sizes).as_py() or 0) > _MAX_TEXT_BYTES:
        raise SheetProblem(
            "its cells repeat over 1 GB of text: keep only the table's columns "
            "(or export it as .csv) and retry"
        )
    return pc.take(strings, positions)


def _render_numbers(
    at: np.ndarray, v: pa.Array, s: pa.Array, styles: list[str], date1904: bool, out: _Builder
) -> None:
    """Number cells, one style at a time: General and zero padding vectorised. A format
    with a date or time in any section goes through :func:`numfmt.show_number` cell by
    cell, which renders each section as its own kind; the check is once per style, so
    plain number formats pay nothing for it."""
    codes = pc.fill_null(s, -1).to_numpy(zero_copy_only=False)
    for style in np.unique(codes).tolist():
        code = styles[style] if 0 <= style < len(styles) else "General"
        mine = np.flatnonzero(codes == style)
        # No <v> (a damaged cell among saved ones, say ``<is>`` on a number): nothing shown.
        values = pc.fill_null(pc.take(v, pa.array(mine)), "")
        if numfmt.shows_dates(code):
            out.add(at[mine], *_each_number(values, code, date1904))
        elif numfmt.is_general(code):
            out.add(at[mine], *_mixed(values, _PLAIN_INTEGER, values, code))
        elif re.fullmatch(r"0+", code):
            # Padding comes from the number, never the stored text: <v>0001234</v> is 1234.
            padded = pc.utf8_lpad(values, width=len(code), padding="0")
            out.add(at[mine], *_mixed(values, r"^(0|[1-9][0-9]{0,14})$", padded, code))
        else:
            out.add(at[mine], *_each_number(values, code))


def _mixed(
    values: pa.Array, simple: str, shown: pa.Array, code: str
) -> tuple[pa.Array, pa.Array | None]:
    """``shown`` where ``values`` match ``simple`` (which can be ids as they are); per-cell
    rendering, and the reason each cannot be an id, for the others."""
    fast = np.asarray(pc.match_substring_regex(values, simple).to_numpy(zero_copy_only=False))
    if fast.all():
        return shown, None
    slow = np.flatnonzero(~fast)
    order = np.arange(len(values), dtype=np.int64)
    order[slow] = len(values) + np.arange(len(slow))
    index = pa.array(order)
    others, problems = _each_number(pc.take(values, pa.array(slow)), code)
    text = pc.take(pa.concat_arrays([shown, others]), index)
    if problems is None:
        return text, None
    blank = pa.array([""] * len(shown), pa.string())
    return text, pc.take(pa.concat_arrays([blank, problems]), index)


def _each_number(
    values: pa.Array, code: str, date1904: bool = False
) -> tuple[pa.Array, pa.Array | None]:
    """Per-cell rendering for the cells no vectorised rule covers, and why each cannot be
    an id ("" when it can; None when none is)."""
    texts, problems = [], []
    for text in values.to_pylist():
        try:
            number = float(text)
        except (TypeError, ValueError):
            texts.append(text or "")
            problems.append("")
            continue
        shown, problem = numfmt.show_number(number, code, date1904)
        texts.append(shown)
        problems.append(problem)
    found = any(problems)
    return pa.array(texts, pa.string()), pa.array(problems, pa.string()) if found else None


def _each_text(values: pa.Array, show: Callable[[str], str]) -> pa.Array:
    return pa.array([show(text or "") for text in values.to_pylist()], pa.string())


def _numbered(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct row numbers in order, and each cell's place among them; rows stored in
    order (the usual case) need no sort."""
    if len(rows) and bool(np.all(rows[1:] >= rows[:-1])):
        new = np.empty(len(rows), dtype=bool)
        new[0] = True
        new[1:] = rows[1:] != rows[:-1]
        return rows[new], np.cumsum(new) - 1
    unique, inverse = np.unique(rows, return_inverse=True)
    return unique, inverse.reshape(-1)


def to_grid(cells: Cells, strings: pa.Array, styles: list[str], date1904: bool) -> Grid:
    """Dense columns over the rows that hold data, for the columns that hold data."""
    text, problem = render_cells(cells, strings, styles, date1904)
    data = pc.not_equal(text, "")
    if problem is not None:
        data = pc.or_(data, pc.not_equal(problem, ""))
    keep = np.asarray(data.to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.asarray(cells.row.to_numpy(), dtype=np.int64)[keep]
    cols = np.asarray(cells.col.to_numpy(), dtype=np.int64)[keep]
    kept = pa.array(np.flatnonzero(keep))
    text = pc.take(text, kept)
    problem = pc.take(problem, kept) if problem is not None else None
    unique_rows, row_at = _numbered(rows)
    present = np.bincount(cols) > 0 if len(cols) else np.zeros(0, dtype=bool)
    unique_cols = np.flatnonzero(present)
    col_at = (np.cumsum(present) - 1)[cols]
    if len(unique_rows) * len(unique_cols) > 20 * len(rows) + _DENSITY_FLOOR:
        raise SheetProblem(
            f"its data is spread over {len(unique_rows):,} rows and "
            f"{len(unique_cols):,} columns with few cells between: keep the table in one "
            "block of columns (or export it as .csv) and retry"
        )
    columns, problems = [], []
    for j in range(len(unique_cols)):
        where = np.full(len(unique_rows), -1, dtype=np.int64)
        mine = np.flatnonzero(col_at == j)
        where[row_at[mine]] = mine  # a cell written twice: the later one wins
        index = pa.array(where, mask=where < 0)
        columns.append(pc.fill_null(pc.take(text, index), ""))
        column_problem = None
        if problem is not None:
            column_problem = pc.fill_null(pc.take(problem, index), "")
            if not pc.any(pc.not_equal(column_problem, "")).as_py():
                column_problem = None
        problems.append(column_problem)
    labels = [column_label(int(c)) for c in unique_cols]
    return Grid(unique_rows.astype(np.int64), columns, labels, problems)
