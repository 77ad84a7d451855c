"""Customers that start latched (``--preset FILE``), so a rehearsal can meet existing links."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

from .customers import MAX_FUSEBILL_ID, is_known_customer, known_ids_text

HEADER = ("fusebillId", "geotabId")
_MAX_SHOWN = 5


class PresetError(ValueError):
    """A preset the sandbox cannot start with; the message is one line meant for ops."""


def load_preset(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read a ``fusebillId,geotabId`` CSV; any bad line or unknown id is a ``PresetError``."""
    where = f"preset {os.fspath(path)}"
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PresetError(f"{where}: cannot read it: {reason}") from None
    if not rows or tuple(cell.strip() for cell in rows[0]) != HEADER:
        raise PresetError(f"{where}: the first line must be the header fusebillId,geotabId")
    pairs: dict[int, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        fid, gid = _pair(row, f"{where}: line {line}")
        if fid in pairs:
            raise PresetError(f"{where}: line {line}: customer {fid} is listed twice")
        pairs[fid] = gid
    check_preset(pairs, where)
    return pairs


def check_preset(pairs: Mapping[int, str], where: str = "preset") -> None:
    """One error naming every id that is not a sandbox customer, and any unusable geotabId."""
    for fid, gid in pairs.items():
        if not isinstance(gid, str) or not 1 <= len(gid) <= 255:
            raise PresetError(f"{where}: customer {fid}: geotabId must be 1..255 characters")
    unknown = sorted(fid for fid in pairs if not is_known_customer(fid))
    if unknown:
        shown = ", ".join(str(fid) for fid in unknown[:_MAX_SHOWN])
        if len(unknown) > _MAX_SHOWN:
            shown += f" and {len(unknown) - _MAX_SHOWN} more"
        raise PresetError(
            f"{where}: {len(unknown)} id(s) are not sandbox customers ({known_ids_text()}): {shown}"
        )


def _pair(row: list[str], where: str) -> tuple[int, str]:
    if len(row) != 2:
        raise PresetError(f"{where}: expected 2 fields (fusebillId,geotabId), got {len(row)}")
    fid_text, gid = row[0].strip(), row[1].strip()
    if not (fid_text.isascii() and fid_text.isdigit()) or not 1 <= int(fid_text) <= MAX_FUSEBILL_ID:
        raise PresetError(f"{where}: fusebillId must be a whole number, got {fid_text!r}")
    if not 1 <= len(gid) <= 255:
        raise PresetError(f"{where}: geotabId must be 1..255 characters")
    return int(fid_text), gid
