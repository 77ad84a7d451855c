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
import itertools
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
from batch_latch.jobfolder.ledger import FILENAME, WRITING, Entry, Ledger, as_lines
from batch_latch.jobfolder.records import as_mask
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


@dataclass
class _Folder:
    """A v3 run folder: its summary, and the lines it gets in the ledger."""

    path: Path
    summary: dict[str, Any]
    kind: str
    entries: list[Entry] = field(default_factory=list)  # a plan's reads
    parts: list[pa.Table] = field(default_factory=list)  # its checkpoint records, as lines
    base_url: str = ""
    fresh: bool = False
    span: tuple[str, str] = ("", "")  # its start and end, to the second
    outcomes: pa.Table | None = None  # row, status, fusebillId, geotabId (valid-looking ids)

    def __post_init__(self) -> None:
        s = self.summary
        start = _second(str(s.get("started_at", ""))) or _second(self.path.name)
        self.span = start, _second(str(s.get("finished_at", ""))) or "9999"


@dataclass
class _Orphans:
    """Records of one checkpoint file that no run folder holds."""

    name: str
    base_url: str
    parts: list[pa.Table] = field(default_factory=list)
    fresh: bool = False


def is_v3(out: Path) -> bool:
    return (out / CHECKPOINT).is_file() or any(out.glob(SET_ASIDE_GLOB))


def take_in(out: Path, ledger: Ledger, err: TextIO | None = None) -> None:
    """Import the v3 memory of ``out`` into a new, empty ``ledger``: read as columns, the
    lines go in whole (``Ledger.taking_in``), their state made once at the end."""
    err = err or sys.stderr
    files = sorted(out.glob(SET_ASIDE_GLOB))
    if (out / CHECKPOINT).is_file():
        files.append(out / CHECKPOINT)
    print(f"Taking the v3 job in {out} into {FILENAME} (its files stay)...", file=err)
    folders = _folders(out)
    for folder in folders:
        if folder.kind == "plan":
            folder.entries = _plan_lines(folder.path)
        folder.outcomes = _outcomes(folder.path)
    firsts = [_first_rows(f.outcomes) for f in folders]
    newest = _newest_rows(firsts)
    order: list[_Folder | _Orphans] = []
    placed = 0  # folders already in ``order``
    sending = [f for f in folders if f.kind in _SENDING]
    index = {id(f): i for i, f in enumerate(folders)}
    at = 0  # records are in time order: their folders never go back
    for n, path in enumerate(files):
        records = _read_checkpoint(path)
        if records is None:
            continue
        base_url, table = records
        times = pc.cast(table["t"], pa.string())
        new = np.flatnonzero(as_mask(pc.not_equal(times[1:], times[:-1]))) + 1
        bounds = [0, *new.tolist(), table.num_rows] if table.num_rows else [0]
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            t = str(times[a].as_py())  # records of one second share their command
            owner, at = _owner(sending, t, at)
            own: pa.Table | None = None
            target: _Folder | _Orphans
            if owner is not None:
                upto = index[id(owner)] + 1
                order.extend(folders[placed:upto])
                placed = max(placed, upto)
                target, own = owner, firsts[index[id(owner)]]
                owner.base_url = base_url
            else:
                while placed < len(folders) and folders[placed].span[0] <= _second(t):
                    order.append(folders[placed])
                    placed += 1
                last = order[-1] if order else None
                if not (isinstance(last, _Orphans) and last.name == f"v3-{path.name}"):
                    order.append(_Orphans(f"v3-{path.name}", base_url))
                target = order[-1]
            if i == 0 and n > 0:
                target.fresh = True
            target.parts.append(_lines(table.slice(a, b - a), own, newest))
    order.extend(folders[placed:])
    with ledger.taking_in():
        for item in order:
            _take(item, ledger)
        for folder in folders:
            _remember_input(folder, ledger)
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


def _read_checkpoint(path: Path) -> tuple[str, pa.Table] | None:
    try:
        version, base_url = checkpoint_file.header(path)
        return base_url, checkpoint_file.read_table(path, version)
    except Exception:  # a damaged set-aside file: what it held is not readable anyway
        if path.name == CHECKPOINT:
            raise
        return None


def _lines(records: pa.Table, own: pa.Table | None, newest: pa.Table) -> pa.Table:
    """Checkpoint records as lines (``LINE_COLUMNS``), each with its sheet row: its pair's
    first row in its own run folder's outcomes (``own``), else in the newest one's. In v3
    any later record of a customer settled a write: every record but an intent settles."""
    row = _rows_of(records, own) if own is not None else None
    missing = pc.is_null(row) if row is not None else None
    if row is None or pc.any(missing).as_py():  # the newest folder's, for the rest
        rest = records if row is None else records.filter(missing)
        found = _rows_of(rest, newest)
        row = found if row is None else pc.replace_with_mask(row, missing, found)
    status = pc.cast(records["s"], pa.string())
    text = {name: pc.cast(records[name], pa.string()) for name in "gpckmt"}
    return pa.table(
        {
            "at": text["t"],
            "row": row,
            "fusebill_id": records["f"],
            "geotab_id": text["g"],
            "previous": text["p"],
            "status": status,
            "change": text["c"],
            "error_key": text["k"],
            "http_status": records["h"],
            "message": text["m"],
            "settles": pc.not_equal(status, WRITING),
        }
    )


def _rows_of(records: pa.Table, rows: pa.Table) -> pa.Array:
    """Each record's sheet row in ``rows`` (f, g, row), null where its pair has none."""
    n = records.num_rows
    keys = pa.table({"f": records["f"], "g": records["g"], "i": np.arange(n, dtype=np.int64)})
    found = keys.join(rows, ["f", "g"], join_type="left outer").sort_by("i")
    return found["row"].combine_chunks()


def _take(item: _Folder | _Orphans, ledger: Ledger) -> None:
    parts = item.parts if isinstance(item, _Orphans) else [*item.parts, as_lines(item.entries)]
    lines = pa.concat_tables(parts) if parts else as_lines([])
    if isinstance(item, _Orphans):
        times = lines["at"]
        first, last = (times[0].as_py(), times[-1].as_py()) if len(times) else ("", "")
        command = ledger.begin(
            item.name, "run", started_at=first, base_url=item.base_url, fresh=item.fresh, pid=0
        )
        ledger.take_lines(command, lines)
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
    ledger.take_lines(command, lines)
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
    table = folder.outcomes
    if not sha or table is None:
        return
    if pa.types.is_integer(table["status"].type):
        table = table.filter(pc.invert(pc.is_in(table["status"], pa.array(_NOT_PAIRS))))
    ledger.remember_input(
        sha,
        table["row"].to_numpy(),
        table["fusebillId"].to_numpy(),
        table["geotabId"].combine_chunks(),
    )


def _outcomes(folder: Path) -> pa.Table | None:
    """(row, status, fusebillId, geotabId) of a run folder's valid-looking outcomes (a
    fusebillId all digits, as an integer; a missing geotabId empty); None: none readable."""
    try:
        table = feather.read_table(str(folder / "outcomes.arrow"))
    except Exception:  # none, or damaged: those rows stay without a sheet row
        return None
    if not {"row", "status", "fusebillId", "geotabId"} <= set(table.column_names):
        return None
    fid = table["fusebillId"]
    if pa.types.is_integer(fid.type):
        valid = pc.greater(fid, 0)
    else:
        fid = pc.cast(fid, pa.string())
        valid = pc.match_substring_regex(fid, "^[0-9]+$")
    table = table.filter(pc.fill_null(valid, False))
    return pa.table(
        {
            "row": pc.cast(table["row"], pa.int64()),
            "status": table["status"],
            "fusebillId": pc.cast(table["fusebillId"], pa.int64()),
            "geotabId": pc.fill_null(pc.cast(table["geotabId"], pa.string()), ""),
        }
    )


def _first_rows(outcomes: pa.Table | None) -> pa.Table:
    """(f, g, row): each pair's first sheet row in a run folder's outcomes."""
    if outcomes is None:
        outcomes = pa.table(
            {
                "row": pa.array([], pa.int64()),
                "fusebillId": pa.array([], pa.int64()),
                "geotabId": pa.array([], pa.string()),
            }
        )
    keyed = pa.table(
        {"f": outcomes["fusebillId"], "g": outcomes["geotabId"], "row": outcomes["row"]}
    )
    got = keyed.group_by(["f", "g"], use_threads=False).aggregate([("row", "first")])
    return got.rename_columns(["f", "g", "row"])


def _newest_rows(firsts: list[pa.Table]) -> pa.Table:
    """(f, g, row): each pair's first sheet row in the newest run folder that has it."""
    every = pa.concat_tables(firsts) if firsts else _first_rows(None)
    got = every.group_by(["f", "g"], use_threads=False).aggregate([("row", "last")])
    return got.rename_columns(["f", "g", "row"])
