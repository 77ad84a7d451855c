"""The cells of one worksheet's XML, as columns: row, column, type, style, value, formula.

Why not a library: python-calamine (Rust) gives values fast but no number formats, and it
cannot tell an error cell from the text ``#N/A``; openpyxl gives everything at ~75 s a
million rows. Measured on a 1,000,000-row, 4-column XlsxWriter workbook (199 MB of sheet
XML; 2 cores): calamine ``from_path`` + ``get_sheet`` 3.0 s, ``to_python`` 1.4 s more
(448 MB peak), before any formatting; ``xml.etree.iterparse`` well over 20 s; this module's
vectorised scan 3.3 s on one thread, and about half that with two threads.

The fast scan splits the XML at ``<c `` with Arrow and reads each cell with one RE2 pattern
(Arrow compute releases the GIL, so chunks run on two threads while the main thread
inflates the next one). It only accepts what it fully understands; anything else (namespace
prefixes, CDATA, comments, cells without ``r``, a non-UTF-8 encoding) sends the whole sheet
to :func:`scan_slow`, an exact ``iterparse`` reader that gives the same columns.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.sheet.grid import column_index

_CHUNK = 4 << 20  # 4 MB: a 100,000-row sheet (20 MB) gives both threads work
# Excel, XlsxWriter, openpyxl and LibreOffice write r, then s, then t, and values as
# <v> or <is><t>: the common cell in one pattern.
# After a cell only row tags may follow, or the end of sheetData and whatever comes after
# it: so a comment, CDATA or a <c> without attributes between cells fails both patterns.
_TAIL = r"(?:\s|</row>|<row(?:\s[^>]*)?>)*(?:</sheetData>.*)?$"
_FAST = (
    r'(?s)^r="(?P<col>[A-Z]{1,3})(?P<row>[0-9]{1,7})"(?: s="(?P<s>[0-9]+)")?'
    r'(?: t="(?P<t>[a-zA-Z]+)")?'
    r"(?:/>|>(?:<v>(?P<v>[^<]*)</v>|<is><t(?: [^>]*)?>(?P<inl>[^<]*)</t></is>)?</c>)" + _TAIL
)
# Any attribute order, formulas, rich inline text, an empty <v/>, an extLst, whitespace
# between the children (as pretty-printing writers leave). An empty <v></v> or <v/> is a
# saved empty value (a formula that gave ""), kept apart from a missing <v> in group "ev".
_GENERAL = (
    r"(?s)^(?P<a>[^>]*?)(?:/>|>\s*(?P<f><f(?:\s[^>]*)?(?:/>|>[^<]*</f>))?\s*"
    r"(?:(?P<ev><v\s*/>|<v></v>)|<v>(?P<v>[^<]*)</v>)?\s*(?:<is>(?P<inl>.*?)</is>)?\s*"
    r"(?:<extLst>.*?</extLst>)?\s*</c>)" + _TAIL
)
_ATTR = r'(?:^|\s){}\s*=\s*"(?P<x>[^"]*)"'
_REF = re.compile(r"\$?([A-Z]{1,3})\$?([0-9]{1,7})")
_PREFIXED_ROOT = re.compile(rb"<[A-Za-z_][\w.-]*:worksheet[\s>]")
_FIELDS = ("row", "col", "t", "s", "v", "inl", "f")


class Irregular(Exception):
    """The fast scan met XML it does not model: read the sheet with :func:`scan_slow`."""


@dataclass(frozen=True)
class Cells:
    """One entry per ``<c>`` element, in file order (rows may be out of order)."""

    row: pa.Array  # int64 spreadsheet row number
    col: pa.Array  # int32 0-based column
    t: pa.Array  # string cell type, null when absent (a number)
    s: pa.Array  # int32 style index, null when absent
    v: pa.Array  # string <v> text, raw XML (entities not decoded), null when absent, "" when
    # empty in a formula cell (the general scan and the slow one; the fast one gives null)
    inl: pa.Array  # string <is> content, raw XML, null when absent
    f: pa.Array  # bool: has a formula
    raw: bool  # v and inl are raw XML (entities, rich runs) still to decode


def scan_fast(stream: IO[bytes], workers: int = 2) -> Cells:
    """Read the sheet XML stream in chunks; raise :class:`Irregular` when it cannot."""
    parts: list[tuple[pa.Array, ...]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[tuple[pa.Array, ...]]] = deque()
        for body in _chunks(stream):
            pending.append(pool.submit(_scan_chunk, body))
            if len(pending) > workers + 1:  # bound the inflated XML held at once
                parts.append(pending.popleft().result())
        parts.extend(future.result() for future in pending)
    types = (pa.int64(), pa.int32(), pa.string(), pa.int32(), pa.string(), pa.string(), pa.bool_())
    merged = [
        pa.concat_arrays([part[k] for part in parts]) if parts else pa.array([], type=kind)
        for k, kind in enumerate(types)
    ]
    row, col, t, s, v, inl, f = merged
    return Cells(row=row, col=col, t=t, s=s, v=v, inl=inl, f=f, raw=True)


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Pieces of the XML that end just before a ``<c ``, so no cell is cut in two."""
    rest = b""
    first = True
    while True:
        data = stream.read(_CHUNK)
        buffer = rest + data
        if first:
            _check_prologue(buffer[:4096])
            first = False
        if not data:
            if buffer:
                yield buffer
            return
        cut = buffer.rfind(b"<c ")
        if cut <= 0:
            rest = buffer
            continue
        yield buffer[:cut]
        rest = buffer[cut:]


def _check_prologue(head: bytes) -> None:
    """UTF-16, another declared encoding, or prefixed tags (``<x:c>``, as some .NET
    writers do): the XML parser handles those."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Irregular
    if re.search(rb"encoding=[\"'](?!utf-8)", head, re.IGNORECASE) or _PREFIXED_ROOT.search(head):
        raise Irregular


def _scan_chunk(body: bytes) -> tuple[pa.Array, ...]:
    try:
        text = pa.array([body], pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        raise Irregular from None
    pieces = pc.list_flatten(pc.split_pattern(text, "<c ")).slice(1)
    fast = pc.extract_regex(pieces, _FAST)
    row = pc.cast(_nullify(fast.field("row")), pa.int64())
    col = _columns(fast.field("col"))
    s = pc.cast(_nullify(fast.field("s")), pa.int32())
    f = pa.array(np.zeros(len(pieces), dtype=bool))
    t = _nullify(fast.field("t"))
    parts = (row, col, t, s, _nullify(fast.field("v")), _nullify(fast.field("inl")), f)
    if not fast.null_count:
        return parts
    # Formulas, other attribute orders...: the general pattern for those cells only.
    odd = np.flatnonzero(~np.asarray(pc.is_valid(fast).to_numpy(zero_copy_only=False)))
    general = _scan_general(pc.take(pieces, pa.array(odd)))
    order = np.arange(len(pieces), dtype=np.int64)
    order[odd] = len(pieces) + np.arange(len(odd))
    index = pa.array(order)
    return tuple(pc.take(pa.concat_arrays([a, b]), index) for a, b in zip(parts, general))


def _nullify(texts: pa.Array) -> pa.Array:
    """Arrow gives "" for a group that did not take part in the match: make it null (an
    empty ``<v></v>`` or ``<t></t>`` shows nothing either, so it may be null too)."""
    if not pc.any(pc.equal(texts, "")).as_py():
        return texts
    return pc.if_else(pc.equal(texts, ""), pa.scalar(None, pa.string()), texts)


def _columns(letters: pa.Array) -> pa.Array:
    encoded = pc.dictionary_encode(letters)
    lookup = pa.array([column_index(x) for x in encoded.dictionary.to_pylist()], pa.int32())
    return pc.take(lookup, encoded.indices)


def _scan_general(pieces: pa.Array) -> tuple[pa.Array, ...]:
    match = pc.extract_regex(pieces, _GENERAL)
    if match.null_count:
        raise Irregular
    attrs = match.field("a")
    ref = pc.extract_regex(attrs, _ATTR.format("r"))
    if ref.null_count:
        raise Irregular  # a cell without r: its place is implied, the slow reader knows it
    parts = pc.extract_regex(ref.field("x"), r"^(?P<col>[A-Z]{1,3})(?P<row>[0-9]{1,7})$")
    if parts.null_count:
        raise Irregular
    t = pc.struct_field(pc.extract_regex(attrs, _ATTR.format("t")), [0])
    s = pc.struct_field(pc.extract_regex(attrs, _ATTR.format("s")), [0])
    return (
        pc.cast(parts.field("row"), pa.int64()),
        _columns(parts.field("col")),
        _nullify(t),
        pc.cast(_nullify(s), pa.int32()),
        pc.if_else(pc.not_equal(match.field("ev"), ""), "", _nullify(match.field("v"))),
        _nullify(match.field("inl")),
        pc.not_equal(match.field("f"), ""),
    )


def scan_slow(stream: IO[bytes]) -> Cells:
    """Exact reading with the standard XML parser: any prefix, order or encoding."""
    out: dict[str, list[object]] = {name: [] for name in _FIELDS}
    row_number, col_number = 0, -1
    context = ET.iterparse(stream, events=("start", "end"))
    cell: dict[str, object] = {}
    for event, element in context:
        name = element.tag.rsplit("}", 1)[-1]
        if event == "start":
            if name == "row":
                row_number = int(element.get("r") or row_number + 1)
                col_number = -1
            elif name == "c":
                row_number, col_number = _cell_place(element.get("r"), row_number, col_number)
                cell = {"t": element.get("t"), "s": element.get("s"), "v": None, "inl": None}
                cell["f"] = False
            continue
        if name == "v":
            cell["v"] = element.text or ""
        elif name == "f":
            cell["f"] = True
        elif name == "is":
            cell["inl"] = _inline_text(element)
        elif name == "c":
            for key, value in (("row", row_number), ("col", col_number), *cell.items()):
                out[key].append(value)
        elif name == "row":
            element.clear()
    return _cells_from_lists(out)


def _cell_place(ref: str | None, row: int, previous_col: int) -> tuple[int, int]:
    """A cell's (row, column): from its ``r``, else the next column of the current row."""
    if not ref:
        return row, previous_col + 1
    match = _REF.fullmatch(ref)
    if not match:
        raise ValueError(f"cell reference {ref!r} is not valid")
    return int(match.group(2)), column_index(match.group(1))


def _inline_text(element: ET.Element) -> str:
    """The text of ``<is>``: its ``<t>`` and rich runs, not the phonetic ``<rPh>`` guide."""
    parts: list[str] = []
    for child in element:
        name = child.tag.rsplit("}", 1)[-1]
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(t.text or "" for t in child if t.tag.rsplit("}", 1)[-1] == "t")
    return "".join(parts)


def _cells_from_lists(out: dict[str, list[object]]) -> Cells:
    s = [None if x is None else int(str(x)) for x in out["s"]]
    return Cells(
        row=pa.array(out["row"], pa.int64()),
        col=pa.array(out["col"], pa.int32()),
        t=pa.array(out["t"], pa.string()),
        s=pa.array(s, pa.int32()),
        v=pa.array(out["v"], pa.string()),
        inl=pa.array(out["inl"], pa.string()),
        f=pa.array(out["f"], pa.bool_()),
        raw=False,  # the parser decoded entities and rich runs already
    )
