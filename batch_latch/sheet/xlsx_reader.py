"""An .xlsx worksheet as the text Excel shows, cell by cell, into a :class:`Grid`.

The workbook parts (sheet list and visibility, relationships, styles, shared strings) are
small and read with the standard XML parser; the worksheet itself is scanned by
:mod:`batch_latch.sheet.xlsx_cells`. Choices, for the cells Excel shows as something other than
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

import dataclasses
import io
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import pyarrow as pa

from batch_latch.errors import InputError
from batch_latch.sheet import numfmt, xlsx_cells, xlsx_render
from batch_latch.sheet.grid import Grid

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: The password Excel encrypts with when the user gave none ([MS-XLS] names it, and Excel
#: still uses it for .xlsx): such a workbook opens without asking.
DEFAULT_PASSWORD = "VelvetSweatshop"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_STRICT_REL_NS = "http://purl.oclc.org/ooxml/officeDocument/relationships"


@dataclass(frozen=True)
class SheetEntry:
    name: str
    visible: bool
    part: str  # zip member of its XML


def read(path: Path, sheet: str | None) -> Grid:
    """Read the chosen worksheet; every file-level problem is one :class:`InputError`."""
    source: Path | io.BytesIO = path
    if _check_magic(path):
        source = _decrypt_default(path)
    try:
        with zipfile.ZipFile(source) as archive:
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


def _check_magic(path: Path) -> bool:
    """True for an OLE container (an encrypted workbook, or an old .xls); an error for
    anything that is not a zip either."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == _OLE_MAGIC:
        return True
    if not head.startswith(b"PK"):
        raise InputError(
            f"{path.name} is not an Excel workbook (not a zip file): "
            "save it as .xlsx or .csv and retry"
        )
    return False


def _protected(path: Path) -> InputError:
    return InputError(
        f"{path.name} is password-protected or an old-format (.xls) workbook: "
        "remove the password or save it as .xlsx in Excel, then retry"
    )


def _decrypt_default(path: Path) -> io.BytesIO:
    """The workbook inside an encrypted one whose password is Excel's default
    ("VelvetSweatshop": Excel and LibreOffice open it without asking), decrypted in memory
    by msoffcrypto-tool (ECMA-376 Agile and Standard encryption, [MS-OFFCRYPTO]), imported
    only here so no other command pays for it (~17 ms). A real password, or an old .xls, is
    refused as before."""
    try:
        import msoffcrypto
    except ImportError:  # an install without it: the old refusal
        raise _protected(path) from None
    out = io.BytesIO()
    try:
        with path.open("rb") as handle:
            office = msoffcrypto.OfficeFile(handle)
            if getattr(office, "format", "") != "ooxml" or not office.is_encrypted():
                raise _protected(path)
            office.load_key(password=DEFAULT_PASSWORD, verify_password=True)
            office.decrypt(out)
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception:  # a wrong key, or an OLE file it cannot parse: msoffcrypto's own
        raise _protected(path) from None
    out.seek(0)
    if out.read(2) != b"PK":
        raise _protected(path)
    out.seek(0)
    return out


class _Package:
    """The zip's members by part name. OPC part names are case-insensitive (ECMA-376 Part 2
    §9.1.1.1: ``xl/SharedStrings.xml`` is ``xl/sharedStrings.xml``), and some writers store
    ``xl\\workbook.xml`` with Windows separators; Excel opens both."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.members: dict[str, str] = {}
        for name in archive.namelist():
            self.members.setdefault(_part_key(name), name)

    def has(self, part: str) -> bool:
        return _part_key(part) in self.members

    def open(self, part: str) -> IO[bytes]:
        return self.archive.open(self.members[_part_key(part)])

    def read(self, part: str) -> bytes:
        return self.archive.read(self.members[_part_key(part)])


def _part_key(name: str) -> str:
    return name.replace("\\", "/").lstrip("/").casefold()


def _read_archive(path: Path, archive: zipfile.ZipFile, wanted: str | None) -> Grid:
    package = _Package(archive)
    workbook_part = _workbook_part(package)
    sheets, date1904 = _sheets(package, workbook_part)
    entry = _choose(path, sheets, wanted)
    if not package.has(entry.part):
        raise InputError(_damaged(path))
    base = PurePosixPath(workbook_part).parent
    styles = _styles(package, _related(package, workbook_part, "styles", base))
    strings = _shared_strings(package, _related(package, workbook_part, "sharedStrings", base))
    try:
        with package.open(entry.part) as stream:
            cells = xlsx_cells.scan_fast(stream)
    except xlsx_cells.Irregular:
        with package.open(entry.part) as stream:
            cells = xlsx_cells.scan_slow(stream)
    try:
        grid = xlsx_render.to_grid(cells, strings, styles, date1904)
    except xlsx_render.SheetProblem as exc:
        raise InputError(f"sheet {entry.name!r} of {path.name}: {exc}") from None
    if not len(grid):
        raise InputError(f"sheet {entry.name!r} of {path.name} is empty")
    return dataclasses.replace(grid, sheet_names=tuple(s.name for s in sheets))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _workbook_part(package: _Package) -> str:
    """The workbook's part, from the package relationships (usually ``xl/workbook.xml``)."""
    if package.has("_rels/.rels"):
        root = ET.fromstring(package.read("_rels/.rels"))
        for rel in root:
            if rel.get("Type", "").endswith("/officeDocument"):
                target = _normpath(rel.get("Target", "").replace("\\", "/"))
                if package.has(target):
                    return target
    return "xl/workbook.xml"


def _relationships(package: _Package, part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type, target part) of ``part``'s relationships."""
    path = PurePosixPath(part)
    rels_name = str(path.parent / "_rels" / (path.name + ".rels"))
    if not package.has(rels_name):
        return {}
    out = {}
    for rel in ET.fromstring(package.read(rels_name)):
        target = rel.get("Target", "").replace("\\", "/")
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


def _related(package: _Package, part: str, kind: str, base: PurePosixPath) -> str | None:
    for rel_type, target in _relationships(package, part).values():
        if rel_type.endswith("/" + kind) and package.has(target):
            return target
    fallback = f"{base}/{kind}.xml"
    return fallback if package.has(fallback) else None


def _sheets(package: _Package, part: str) -> tuple[list[SheetEntry], bool]:
    """The worksheets in tab order, and the workbook's date system. Only the workbook's own
    children count: Excel 2013+ also writes an ``x15:workbookPr`` (without ``date1904``)
    inside ``extLst``, which must not reset a 1904 workbook to 1900."""
    root = ET.fromstring(package.read(part))
    rels = _relationships(package, part)
    date1904 = False
    entries = []
    for child in root:
        name = _local(child.tag)
        if name == "workbookPr":
            date1904 = child.get("date1904", "").strip().lower() in ("1", "true")
        elif name == "sheets":
            for element in child:
                rel_type, target = rels.get(_relationship_id(element), ("", ""))
                if rel_type.endswith("/worksheet"):  # chartsheets and dialogs hold no table
                    visible = element.get("state", "visible") == "visible"
                    entries.append(SheetEntry(element.get("name", ""), visible, target))
    return entries, date1904


def _relationship_id(element: ET.Element) -> str:
    """``r:id``, in the transitional namespace or Strict OOXML's (``purl.oclc.org``)."""
    for key, value in element.attrib.items():
        if key in (f"{{{_REL_NS}}}id", f"{{{_STRICT_REL_NS}}}id"):
            return value
    return ""


def _choose(path: Path, sheets: list[SheetEntry], wanted: str | None) -> SheetEntry:
    if wanted is None:
        for entry in sheets:
            if entry.visible:
                return entry
        raise InputError(f"{path.name} has no visible worksheet: unhide one or use --sheet NAME")
    # The exact name first ("Data " is not "Data"), then ignoring case and surrounding spaces.
    for entry in sheets:
        if entry.name == wanted:
            return entry
    for entry in sheets:
        if entry.name.strip().casefold() == wanted.strip().casefold():
            return entry
    listing = ", ".join(repr(e.name) + ("" if e.visible else " (hidden)") for e in sheets)
    raise InputError(f"no sheet named {wanted!r} in {path.name}; its sheets are {listing}")


def _styles(package: _Package, part: str | None) -> list[str]:
    """The number format code of each cell style (``cellXfs``), by style index."""
    if part is None:
        return []
    root = ET.fromstring(package.read(part))
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


def _shared_strings(package: _Package, part: str | None) -> pa.Array:
    """Every shared string, rich runs joined, phonetic guides left out, escapes decoded."""
    if part is None:
        return pa.array([], pa.string())
    texts: list[str] = []
    skip = 0
    parts: list[str] = []
    with package.open(part) as stream:
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
