"""An .xlsx worksheet as the text Excel shows, cell by cell, into a :class:`Grid`.

The workbook parts (sheet list and visibility, relationships, styles, shared strings) are
small and read with the standard XML parser; the worksheet itself is scanned by
:mod:`batch_latch.xlsx_cells`. Choices, for the cells Excel shows as something other than
text or a plain number:

- dates and times are shown as ISO 8601 (``2023-03-15``, ``13:45:00``,
  ``2023-03-15 13:45:00``), not in the workbook's locale format, so reports read the same
  everywhere; in an id column they make the row invalid;
- booleans show ``TRUE``/``FALSE`` and errors their code (``#N/A``), as Excel does;
- a formula without a saved value (a file written by a program that does not calculate)
  shows nothing, but its row is not blank; in an id column it makes the row invalid.

Only rows and columns with cells holding something become part of the grid, whatever
``<dimension>`` says and in whatever order rows are stored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa

from batch_latch import numfmt, xlsx_cells, xlsx_render
from batch_latch.errors import InputError
from batch_latch.grid import Grid

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


@dataclass(frozen=True)
class SheetEntry:
    name: str
    visible: bool
    part: str  # zip member of its XML


def read(path: Path, sheet: str | None) -> Grid:
    """Read the chosen worksheet; every file-level problem is one :class:`InputError`."""
    _check_magic(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_archive(path, archive, sheet)
    except InputError:
        raise
    except zipfile.BadZipFile:
        raise InputError(_damaged(path)) from None
    except (KeyError, ValueError, IndexError, ET.ParseError, EOFError, RuntimeError):
        raise InputError(_damaged(path)) from None
    except (zipfile.LargeZipFile, NotImplementedError):
        raise InputError(_damaged(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _damaged(path: Path) -> str:
    return (
        f"{path.name} is damaged or not an Excel workbook: open it in Excel, "
        "save it as .xlsx again (or export it as .csv) and retry"
    )


def _check_magic(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == _OLE_MAGIC:
        raise InputError(
            f"{path.name} is password-protected or an old-format (.xls) workbook: "
            "remove the password or save it as .xlsx in Excel, then retry"
        )
    if not head.startswith(b"PK"):
        raise InputError(
            f"{path.name} is not an Excel workbook (not a zip file): "
            "save it as .xlsx or .csv and retry"
        )


def _read_archive(path: Path, archive: zipfile.ZipFile, wanted: str | None) -> Grid:
    names = set(archive.namelist())
    workbook_part = _workbook_part(archive, names)
    sheets, date1904 = _sheets(archive, workbook_part)
    entry = _choose(path, sheets, wanted)
    if entry.part not in names:
        raise InputError(_damaged(path))
    base = PurePosixPath(workbook_part).parent
    styles = _styles(archive, _related(archive, workbook_part, "styles", base))
    strings = _shared_strings(archive, _related(archive, workbook_part, "sharedStrings", base))
    try:
        with archive.open(entry.part) as stream:
            cells = xlsx_cells.scan_fast(stream)
    except xlsx_cells.Irregular:
        with archive.open(entry.part) as stream:
            cells = xlsx_cells.scan_slow(stream)
    grid = xlsx_render.to_grid(cells, strings, styles, date1904)
    if not len(grid):
        raise InputError(f"sheet {entry.name!r} of {path.name} is empty")
    return grid


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _workbook_part(archive: zipfile.ZipFile, names: set[str]) -> str:
    """The workbook's part, from the package relationships (usually ``xl/workbook.xml``)."""
    if "_rels/.rels" in names:
        root = ET.fromstring(archive.read("_rels/.rels"))
        for rel in root:
            if rel.get("Type", "").endswith("/officeDocument"):
                return rel.get("Target", "").lstrip("/")
    return "xl/workbook.xml"


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type, target part) of ``part``'s relationships."""
    path = PurePosixPath(part)
    rels_name = str(path.parent / "_rels" / (path.name + ".rels"))
    if rels_name not in archive.namelist():
        return {}
    out = {}
    for rel in ET.fromstring(archive.read(rels_name)):
        target = rel.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else str(path.parent / target)
        out[rel.get("Id", "")] = (rel.get("Type", ""), _normpath(resolved))
    return out


def _normpath(part: str) -> str:
    out: list[str] = []
    for piece in part.split("/"):
        if piece == "..":
            if out:
                out.pop()
        elif piece not in ("", "."):
            out.append(piece)
    return "/".join(out)


def _related(archive: zipfile.ZipFile, part: str, kind: str, base: PurePosixPath) -> str | None:
    for rel_type, target in _relationships(archive, part).values():
        if rel_type.endswith("/" + kind) and target in archive.namelist():
            return target
    fallback = f"{base}/{kind}.xml"
    return fallback if fallback in archive.namelist() else None


def _sheets(archive: zipfile.ZipFile, part: str) -> tuple[list[SheetEntry], bool]:
    root = ET.fromstring(archive.read(part))
    rels = _relationships(archive, part)
    date1904 = False
    entries = []
    for element in root.iter():
        name = _local(element.tag)
        if name == "workbookPr":
            date1904 = element.get("date1904", "").lower() in ("1", "true")
        elif name == "sheet":
            rel_type, target = rels.get(element.get(f"{{{_REL_NS}}}id", ""), ("", ""))
            if rel_type.endswith("/worksheet"):  # chartsheets and dialogs hold no table
                visible = element.get("state", "visible") == "visible"
                entries.append(SheetEntry(element.get("name", ""), visible, target))
    return entries, date1904


def _choose(path: Path, sheets: list[SheetEntry], wanted: str | None) -> SheetEntry:
    if wanted is None:
        for entry in sheets:
            if entry.visible:
                return entry
        raise InputError(f"{path.name} has no visible worksheet: unhide one or use --sheet NAME")
    for entry in sheets:
        if entry.name.casefold() == wanted.strip().casefold():
            return entry
    listing = ", ".join(repr(e.name) + ("" if e.visible else " (hidden)") for e in sheets)
    raise InputError(f"no sheet named {wanted!r} in {path.name}; its sheets are {listing}")


def _styles(archive: zipfile.ZipFile, part: str | None) -> list[str]:
    """The number format code of each cell style (``cellXfs``), by style index."""
    if part is None:
        return []
    root = ET.fromstring(archive.read(part))
    custom: dict[int, str] = {}
    codes: list[str] = []
    for element in root:
        name = _local(element.tag)
        if name == "numFmts":
            for fmt in element:
                custom[int(fmt.get("numFmtId", "0"))] = fmt.get("formatCode", "General")
        elif name == "cellXfs":
            for xf in element:
                codes.append(numfmt.format_code(int(xf.get("numFmtId", "0")), custom))
    return codes


def _shared_strings(archive: zipfile.ZipFile, part: str | None) -> pa.Array:
    """Every shared string, rich runs joined, phonetic guides left out, escapes decoded."""
    if part is None:
        return pa.array([], pa.string())
    texts: list[str] = []
    skip = 0
    parts: list[str] = []
    with archive.open(part) as stream:
        for event, element in ET.iterparse(stream, events=("start", "end")):
            name = _local(element.tag)
            if name == "rPh":
                skip += 1 if event == "start" else -1
            elif event != "end":
                continue
            elif name == "t" and not skip:
                parts.append(element.text or "")
            elif name == "si":
                texts.append(xlsx_render.decode_escapes("".join(parts)))
                parts = []
                element.clear()
    return pa.array(texts, pa.string())
