"""The cells of ``results.xlsx``'s data rows, and Excel's text rules they follow.

Every cell is text: cut to Excel's limit with a visible marker (the CSV has the whole
value), and escaped the way Excel reads ``_xHHHH_`` (see :func:`excel_escape`).
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: Excel's limit on a cell's text, in UTF-16 code units.
MAX_CELL_CHARS = 32_767
#: How a cut cell ends; ``{n}`` is the length of the whole value in characters.
CUT_MARKER = " [... cut: {n:,} characters in all, see results.csv]"

# Excel writes "_" of a literal "_xHHHH_" as "_x005F_" and a character XML cannot hold as
# "_xHHHH_". Overlapping literals ("_x005F_x0041_") need every "_" escaped, hence the
# lookahead; XlsxWriter's own escape misses the second one.
_EXCEL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x08\x0b-\x1f\ufffe\uffff]")

#: The most rows results.xlsx holds; a larger sheet gets only the CSV reports.
MAX_XLSX_ROWS = 200_000


def chunkwise(convert: Any, column: pa.ChunkedArray) -> pa.Array:
    """Convert each chunk on its own: dictionary chunks may each have their own dictionary."""
    if column.num_chunks == 0:
        return pa.array([], pa.string())
    return pa.concat_arrays([convert(chunk) for chunk in column.chunks])


def as_text(array: pa.Array) -> pa.Array:
    """Any column as plain strings (dictionary decoded, numbers as digits, nulls kept)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    return array


def cell_texts(column: pa.ChunkedArray) -> list[str]:
    """A column as the Python strings of its cells: text as it is, numbers as digits, nulls
    ``""`` (an empty cell), each cut to Excel's limit with a visible marker."""
    texts = pc.fill_null(chunkwise(as_text, column), "")
    values: list[str] = texts.to_pylist()
    if values and (pc.max(pc.utf8_length(texts)).as_py() or 0) > MAX_CELL_CHARS // 2:
        values = [cut(v) for v in values]
    return values


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
    """Text as Excel stores it: a control character (and U+FFFE, U+FFFF) as ``_xHHHH_``, and
    the ``_`` of every literal ``_xHHHH_`` as ``_x005F_``, overlapping ones too.

    Called for every cell: a text with no ``_x`` whose characters are all printable (no
    control character nor non-character among them) has nothing to escape, and those two
    checks cost far less than the regular expression's scan."""
    if "_x" not in text and text.isprintable():
        return text
    return _EXCEL_ESCAPE.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return "_x005F_" if char == "_" else f"_x{ord(char):04X}_"
