"""The XML of ``results.xlsx``'s data rows, built a batch at a time with Arrow compute.

Every cell is an inline string: its text cut to Excel's limit, Excel-escaped (``_xHHHH_``)
and XML-escaped, with ``xml:space="preserve"`` where it starts or ends with a space. The
work that does not depend on the row is done once per column (a dictionary column's once
per distinct value), and the result stays UTF-8 in an Arrow buffer, never a Python string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from xlsxwriter.utility import xl_col_to_name

from batch_latch.sheet.grid import edge_bytes, regex_hits

#: Excel's limit on a cell's text, in UTF-16 code units.
MAX_CELL_CHARS = 32_767
#: How a cut cell ends; ``{n}`` is the length of the whole value in characters.
CUT_MARKER = " [... cut: {n:,} characters in all, see results.csv]"

# Excel writes "_" of a literal "_xHHHH_" as "_x005F_" and a character XML cannot hold as
# "_xHHHH_". Overlapping literals ("_x005F_x0041_") need every "_" escaped, hence the
# lookahead; XlsxWriter's own escape misses the second one.
_EXCEL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_NEEDS_ESCAPE = r"_x[0-9A-Fa-f]{4}_|[\x00-\x08\x0b-\x1f\x{FFFE}\x{FFFF}]"  # RE2: no lookahead
_EDGE_SPACE = r"^[\s\pZ]|[\s\pZ]$"  # the <t> needs xml:space="preserve"

#: The most rows results.xlsx holds; a larger sheet gets only the CSV reports.
MAX_XLSX_ROWS = 200_000


def rows_xml(
    batch: pa.Table,
    first: int,
    styles: Sequence[str],
    status_col: int,
    status_styles: Mapping[str, str],
) -> pa.Buffer:
    """``<row>`` XML (UTF-8) for a batch whose first row is Excel row ``first``; empty cells
    left out. Constant pieces are joined once per column, not once per cell."""
    rows = pc.cast(pa.array(range(first, first + len(batch)), pa.int64()), pa.string())
    cells = []
    for col, column in enumerate(batch.columns):
        texts, opening = _cell_texts(column)
        style: Any = styles[col]
        if col == status_col:
            raw = chunkwise(as_text, column)
            known = pc.index_in(raw, value_set=pa.array(list(status_styles), pa.string()))
            style = pc.fill_null(pc.take(pa.array(list(status_styles.values())), known), style)
        head: list[Any] = [f'<c r="{xl_col_to_name(col)}', rows]
        if isinstance(style, str) and opening is None:
            head.append(f'"{style} t="inlineStr"><is><t>')
        else:
            head += ['"', style, ' t="inlineStr"><is>', "<t>" if opening is None else opening]
        cell = pc.binary_join_element_wise(*head, texts, "</t></is></c>", "")
        cells.append(pc.if_else(pc.equal(texts, ""), "", cell))
    xml = pc.binary_join_element_wise('<row r="', rows, '">', *cells, "</row>", "")
    offsets = np.frombuffer(xml.buffers()[1], dtype=np.int32, count=xml.offset + len(xml) + 1)
    begin, stop = int(offsets[xml.offset]), int(offsets[-1])
    data = xml.buffers()[2]
    return data.slice(begin, stop - begin) if data is not None else pa.py_buffer(b"")


def chunkwise(convert: Any, column: pa.ChunkedArray) -> pa.Array:
    """Convert each chunk on its own: dictionary chunks may each have their own dictionary."""
    if column.num_chunks == 0:
        return pa.array([], pa.string())
    return pa.concat_arrays([convert(chunk) for chunk in column.chunks])


def _cell_texts(column: pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
    """The ``<t>`` texts of a column and their opening tags (None: plain ``<t>`` for all)."""
    parts = [_chunk_texts(chunk) for chunk in column.chunks]
    if not parts:
        return pa.array([], pa.string()), None
    texts = pa.concat_arrays([t for t, _ in parts])
    if all(o is None for _, o in parts):
        return texts, None
    plain = pa.scalar("<t>", pa.string())
    openings = [
        o if o is not None else pc.fill_null(pa.nulls(len(t), pa.string()), plain) for t, o in parts
    ]
    return texts, pa.concat_arrays(openings)


def _chunk_texts(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """:func:`_xml_texts` and the opening tag each needs (``xml:space="preserve"`` for text
    with an edge space); a dictionary column's work is done once per distinct value, and
    numbers need neither escapes nor a check."""
    if pa.types.is_dictionary(array.type) and len(array.dictionary) <= len(array):
        texts, opening = _chunk_texts(array.dictionary)
        return (
            pc.fill_null(pc.take(texts, array.indices), ""),
            None if opening is None else pc.take(opening, array.indices),
        )
    if pa.types.is_integer(array.type):
        return pc.fill_null(pc.cast(array, pa.string()), ""), None
    texts = _xml_texts(array)
    return texts, _openings(texts)


#: First and last bytes that may belong to a space ``_EDGE_SPACE`` matches (RE2's ``\s`` and
#: ``\pZ``): ASCII blanks, and any byte of a character beyond ASCII.
_MAYBE_SPACE = np.zeros(256, dtype=bool)
_MAYBE_SPACE[[9, 10, 11, 12, 13, 32, *range(0x80, 0x100)]] = True


def _openings(texts: pa.Array) -> pa.Array | None:
    """``<t xml:space="preserve">`` where a text starts or ends with a space, else None when
    no text does; the regex runs only on texts whose edge bytes could be a space."""
    suspect = np.flatnonzero(
        _MAYBE_SPACE[edge_bytes(texts)] | _MAYBE_SPACE[edge_bytes(texts, last=True)]
    )
    mask = regex_hits(texts, suspect, _EDGE_SPACE)
    if mask is None:
        return None
    return pc.if_else(pa.array(mask), '<t xml:space="preserve">', "<t>")


def as_text(array: pa.Array) -> pa.Array:
    """Any column as plain strings (dictionary decoded, numbers as digits, nulls kept)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    return array


def _xml_texts(array: pa.Array) -> pa.Array:
    """A column as the text of its ``<t>`` elements: cut, Excel- and XML-escaped, nulls ``""``.

    A dictionary column is escaped once per distinct value, then spread by its indices.
    """
    if pa.types.is_dictionary(array.type) and len(array.dictionary) <= len(array):
        return pc.fill_null(pc.take(_xml_texts(array.dictionary), array.indices), "")
    texts = pc.fill_null(as_text(array), "")
    if len(texts) == 0:
        return texts
    if (pc.max(pc.utf8_length(texts)).as_py() or 0) > MAX_CELL_CHARS // 2:
        texts = pa.array([cut(t) for t in texts.to_pylist()], pa.string())
    needs = pc.match_substring_regex(texts, _NEEDS_ESCAPE)
    if pc.any(needs).as_py():
        values = texts.to_pylist()
        for i in pc.indices_nonzero(needs).to_pylist():
            values[i] = excel_escape(values[i])
        texts = pa.array(values, pa.string())
    if pc.any(pc.match_substring_regex(texts, "[&<>]")).as_py():
        for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            texts = pc.replace_substring(texts, char, entity)
    return texts


def cut(text: str) -> str:
    """Cut a text over Excel's cell limit (UTF-16 units), ending it with a visible marker."""
    if len(text) <= MAX_CELL_CHARS // 2:
        return text
    encoded = text.encode("utf-16-le")
    if len(encoded) // 2 <= MAX_CELL_CHARS:
        return text
    marker = CUT_MARKER.format(n=len(text))
    keep = (MAX_CELL_CHARS - len(marker.encode("utf-16-le")) // 2) * 2
    # errors="ignore" drops half a surrogate pair left at the cut
    return encoded[:keep].decode("utf-16-le", errors="ignore") + marker


def excel_escape(text: str) -> str:
    return _EXCEL_ESCAPE.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return "_x005F_" if char == "_" else f"_x{ord(char):04X}_"
