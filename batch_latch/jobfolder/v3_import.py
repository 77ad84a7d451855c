"""A v3 job folder taken into ``job.db``, losing nothing; the old files stay where they are.

v3 kept a job's memory in ``checkpoint.csv`` (and checkpoints ``--fresh`` set aside as
``checkpoint-<time>.csv.old``) and each command's history in its run folder
(``summary.json``, ``outcomes.arrow``, a plan's ``results.csv``). Each run folder becomes a
command, in the order they ran; each checkpoint record becomes a line of the command that
wrote it (the sending run folder whose start and end hold its time), so ``status
--customer`` names the run folder, kind and user as v3 did; a plan's reads become its
lines. A record no run folder holds (its folder is gone) goes to a command named after its
checkpoint file. The first record of a checkpoint that replaced a set-aside one marks its
command as a ``--fresh`` start. A line's sheet row is its pair's first row in its own run
folder's outcomes (a repeated pair's later rows are duplicates), else the newest one.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from batch_latch.jobfolder import v3_checkpoint as checkpoint_file
from batch_latch.jobfolder.history import RUNS
from batch_latch.jobfolder.ledger import FILENAME, WRITING, Entry, Ledger
from batch_latch.sheet.formula import unescape_text
from batch_latch.vocab import RECORDED, RunKind, Status, command_kind

CHECKPOINT = checkpoint_file.FILENAME
SET_ASIDE_GLOB = "checkpoint-*.csv.old"
_SENDING = ("run", "undo")
#: A plan's rows that it read (as v4 records them): the rest it never reached.
_PLAN_READ = (*RECORDED, Status.VALID.value)
#: ``outcomes.arrow`` status codes of rows that are no pair: ``invalid`` and ``duplicate``
#: (v3 wrote a status's index in its fixed order: valid, success, not_found, failed,
#: invalid, duplicate, pending).
_NOT_PAIRS = (4, 5)

Rows = dict[tuple[int, str], int]


@dataclass
class _Folder:
    """A v3 run folder: its summary, and the lines it gets in the ledger."""

    path: Path
    summary: dict[str, Any]
    kind: str
    entries: list[Entry] = field(default_factory=list)
    base_url: str = ""
    fresh: bool = False
    span: tuple[str, str] = ("", "")  # its start and end, to the second

    def __post_init__(self) -> None:
        s = self.summary
        start = _second(str(s.get("started_at", ""))) or _second(self.path.name)
        self.span = start, _second(str(s.get("finished_at", ""))) or "9999"


@dataclass
class _Orphans:
    """Records of one checkpoint file that no run folder holds."""

    name: str
    base_url: str
    entries: list[Entry] = field(default_factory=list)
    fresh: bool = False


def is_v3(out: Path) -> bool:
    return (out / CHECKPOINT).is_file() or any(out.glob(SET_ASIDE_GLOB))


def take_in(out: Path, ledger: Ledger, err: TextIO | None = None) -> None:
    """Import the v3 memory of ``out`` into a new, empty ``ledger``."""
    err = err or sys.stderr
    files = sorted(out.glob(SET_ASIDE_GLOB))
    if (out / CHECKPOINT).is_file():
        files.append(out / CHECKPOINT)
    print(f"Taking the v3 job in {out} into {FILENAME} (its files stay)...", file=err)
    folders = _folders(out)
    for folder in folders:
        if folder.kind == "plan":
            folder.entries = _plan_lines(folder.path)
    order: list[_Folder | _Orphans] = []
    placed = 0  # folders already in ``order``
    newest = _rows_by_pair(out)
    sending = [f for f in folders if f.kind in _SENDING]
    index = {id(f): i for i, f in enumerate(folders)}
    first_rows: dict[int, Rows] = {}
    at = 0  # records are in time order: their folders never go back
    for n, path in enumerate(files):
        records = _read_checkpoint(path)
        if records is None:
            continue
        base_url, lines = records
        last_at: str | None = None
        rows: Rows = {}
        target: _Folder | _Orphans | None = None
        for i, line in enumerate(lines):
            t = line[8]
            if t != last_at:  # records of one second share their command
                last_at = t
                owner, at = _owner(sending, t, at)
                if owner is not None:
                    upto = index[id(owner)] + 1
                    order.extend(folders[placed:upto])
                    placed = max(placed, upto)
                    if id(owner) not in first_rows:
                        first_rows[id(owner)] = _first_rows(owner.path)
                    target, rows = owner, first_rows[id(owner)]
                    owner.base_url = base_url
                else:
                    while placed < len(folders) and folders[placed].span[0] <= _second(t):
                        order.append(folders[placed])
                        placed += 1
                    last = order[-1] if order else None
                    if not (isinstance(last, _Orphans) and last.name == f"v3-{path.name}"):
                        order.append(_Orphans(f"v3-{path.name}", base_url))
                    target, rows = order[-1], {}
                if i == 0 and n > 0:
                    target.fresh = True
            assert target is not None
            key = (line[0], line[1])
            row = rows.get(key)
            row = newest.get(key) if row is None else row
            target.entries.append(Entry(*line, row, settles=line[2] != WRITING))
    order.extend(folders[placed:])
    for item in order:
        _take(item, ledger)
    for folder in folders:
        _remember_input(folder, ledger)
    ledger.flush()
    count = ledger.query("SELECT count(*) FROM log")[0][0]
    print(f"Taken in: {count:,} records, {len(files)} checkpoint file(s).", file=err)


def _owner(sending: list[_Folder], t: str, at: int) -> tuple[_Folder | None, int]:
    """The sending folder that wrote a record of time ``t``: the first from ``at`` on whose
    span holds it, else the latest that had started; None when none had."""
    t = _second(t)
    started = None
    for j in range(at, len(sending)):
        start, end = sending[j].span
        if start > t:
            break
        if t <= end:
            return sending[j], j
        started = j
    return (sending[started], started) if started is not None else (None, at)


def _second(text: str) -> str:
    """An ISO time (or a run folder name) as ``YYYY-MM-DDTHH:MM:SS``, to compare."""
    if len(text) >= 15 and text[8] == "T" and text[:8].isdigit():  # 20261207T102624.242Z-run
        d, t = text[:8], text[9:15]
        return f"{d[:4]}-{d[4:6]}-{d[6:]}T{t[:2]}:{t[2:4]}:{t[4:]}"
    return text[:19]


#: A checkpoint record as Entry's first fields: fusebillId, geotabId, status, change,
#: previous, error_key, http_status, message, at (v3: any later record settled a write).
_Line = tuple[int, str, str, str, str, str, "int | None", str, str]


def _read_checkpoint(path: Path) -> tuple[str, list[_Line]] | None:
    try:
        version, base_url = checkpoint_file.header(path)
        table = checkpoint_file.read_table(path, version)
    except Exception:  # a damaged set-aside file: what it held is not readable anyway
        if path.name == CHECKPOINT:
            raise
        return None
    f = table["f"].to_pylist()
    cols = {name: pc.cast(table[name], pa.string()).to_pylist() for name in "gsmkcpt"}
    h = table["h"].to_pylist()
    lines = [
        (
            f[i],
            cols["g"][i] or "",
            cols["s"][i] or "",
            cols["c"][i] or "",
            cols["p"][i] or "",
            cols["k"][i] or "",
            h[i],
            cols["m"][i] or "",
            cols["t"][i] or "",
        )
        for i in range(table.num_rows)
    ]
    return base_url, lines


def _take(item: _Folder | _Orphans, ledger: Ledger) -> None:
    entries = item.entries
    if isinstance(item, _Orphans):
        first, last = (entries[0].at, entries[-1].at) if entries else ("", "")
        command = ledger.begin(
            item.name, "run", started_at=first, base_url=item.base_url, fresh=item.fresh, pid=0
        )
        ledger.record_many(entries, command)  # many lines: one transaction, state set-wise
        ledger.end(command, ended_at=last, exit_code=0)
        return
    s = item.summary
    command = ledger.begin(
        item.path.name,
        item.kind,
        started_at=str(s.get("started_at", "")),
        user=str(s.get("user", "")),
        host=str(s.get("host", "")),
        input=str(s.get("input", "")),
        input_sha256=str(s.get("input_sha256", "")),
        base_url=item.base_url or str(s.get("base_url", "")),
        plan_run_id=s.get("plan"),
        fresh=item.fresh,
        pid=0,
    )
    ledger.record_many(entries, command)  # many lines: one transaction, state set-wise
    counts = s.get("counts") or {}
    ledger.end(
        command,
        ended_at=str(s.get("finished_at", "")),
        exit_code=int(s.get("exit_code", 0)),
        requests=int(s.get("requests", 0)),
        rows=int(s.get("rows", 0)),
        invalid=int(counts.get("invalid", 0)),
        stop_reason=s.get("stop_reason"),
        by_day={str(k): int(v) for k, v in (s.get("requests_by_day") or {}).items()},
    )


def _folders(out: Path) -> list[_Folder]:
    """The run folders that hold a summary, oldest first."""
    runs = out / RUNS
    found = []
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        try:
            data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            known = {k.value: k for k in RunKind}  # an undo --dry-run owns no record
            ran = known.get(str(data.get("kind", "run")), RunKind.RUN)
            kind = command_kind(ran, bool(data.get("dry_run")))
            found.append(_Folder(folder, data, kind))
    return found


def _plan_lines(folder: Path) -> list[Entry]:
    """A v3 plan's reads, from its ``results.csv`` (a plan's reads settle no write)."""
    try:
        with (folder / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    lines = []
    for r in rows:
        fid, status = r.get("fusebillId") or "", r.get("status") or ""
        if status not in _PLAN_READ or not fid.isdigit() or not (r.get("row") or "").isdigit():
            continue
        http = r.get("http_status") or ""
        lines.append(
            Entry(
                int(fid),
                unescape_text(r.get("geotabId") or ""),
                status,
                r.get("change") or "",
                unescape_text(r.get("previous_geotabId") or ""),
                r.get("error_key") or "",
                int(http) if http.isdigit() else None,
                unescape_text(r.get("message") or ""),
                r.get("finished_at") or "",
                int(r["row"]),
            )
        )
    return lines


def _remember_input(folder: _Folder, ledger: Ledger) -> None:
    """The valid rows of a command's input, from its outcomes (v3 status codes: invalid
    and duplicate rows are not an input's pairs), so ``left_rows`` counts what a re-run of
    the job's newest input would still send."""
    sha = str(folder.summary.get("input_sha256") or "")
    try:
        table = feather.read_table(str(folder.path / "outcomes.arrow"))
    except Exception:  # none, or damaged: nothing known of that input
        return
    if not sha or "fusebillId" not in table.column_names:
        return
    kept = [
        (int(r), int(fid), gid or "")
        for r, code, fid, gid in zip(
            table["row"].to_pylist(),
            table["status"].to_pylist(),
            table["fusebillId"].to_pylist(),
            table["geotabId"].to_pylist(),
        )
        if code not in _NOT_PAIRS and fid and str(fid).isdigit()
    ]
    ledger.remember_input(
        sha,
        np.array([k[0] for k in kept], np.int64),
        np.array([k[1] for k in kept], np.int64),
        pa.array([k[2] for k in kept], pa.string()),
    )


def _first_rows(folder: Path) -> Rows:
    """(fusebillId, geotabId) -> its first sheet row in a run folder's outcomes."""
    rows: Rows = {}
    for r, fid, gid in _outcomes(folder):
        rows.setdefault((fid, gid), r)
    return rows


def _rows_by_pair(out: Path) -> Rows:
    """(fusebillId, geotabId) -> its first sheet row in the newest v3 run folder that has it."""
    rows: Rows = {}
    runs = out / RUNS
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        rows.update(_first_rows(folder))
    return rows


def _outcomes(folder: Path) -> list[tuple[int, int, str]]:
    """(row, fusebillId, geotabId) of a run folder's valid-looking outcomes."""
    try:
        table = feather.read_table(str(folder / "outcomes.arrow"))
    except Exception:  # none, or damaged: those rows stay without a sheet row
        return []
    if "fusebillId" not in table.column_names:
        return []
    return [
        (int(r), int(fid), gid or "")
        for r, fid, gid in zip(
            table["row"].to_pylist(),
            table["fusebillId"].to_pylist(),
            table["geotabId"].to_pylist(),
        )
        if fid and str(fid).isdigit()
    ]
