"""A v3 job folder taken into ``job.db``, losing nothing; the old files stay where they are.

v3 kept a job's memory in ``checkpoint.csv`` (and checkpoints ``--fresh`` set aside as
``checkpoint-<time>.csv.old``) and each command's history in its run folder
(``summary.json``, ``outcomes.arrow``). Each run folder becomes a command; each checkpoint's
records become the lines of one imported command (kind ``run``, so the re-run rules and
undo count them), the set-aside ones first, a checkpoint set aside marking the next one as
a ``--fresh`` start. A record's sheet row comes from the newest run outcome of its pair.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from batch_latch.jobfolder import v3_checkpoint as checkpoint_file
from batch_latch.jobfolder.history import RUNS
from batch_latch.jobfolder.ledger import WRITING, Ledger
from batch_latch.vocab import RunKind

CHECKPOINT = checkpoint_file.FILENAME
SET_ASIDE_GLOB = "checkpoint-*.csv.old"
_KINDS = {
    RunKind.RUN.value: "run",
    RunKind.DRY_RUN.value: "dry_run",
    RunKind.PLAN.value: "plan",
    RunKind.UNDO.value: "undo",
}


def is_v3(out: Path) -> bool:
    return (out / CHECKPOINT).is_file() or any(out.glob(SET_ASIDE_GLOB))


def take_in(out: Path, ledger: Ledger, err: TextIO | None = None) -> None:
    """Import the v3 memory of ``out`` into a new, empty ``ledger``."""
    err = err or sys.stderr
    files = sorted(out.glob(SET_ASIDE_GLOB))
    if (out / CHECKPOINT).is_file():
        files.append(out / CHECKPOINT)
    print(f"Taking the v3 job in {out} into {ledger.path.name} (its files stay)...", file=err)
    rows = _rows_by_pair(out)
    for n, path in enumerate(files):
        _take_checkpoint(path, ledger, rows, fresh=n > 0)
    for folder, summary in _summaries(out):
        _take_command(folder, summary, ledger)
    ledger.flush()
    count = ledger.query("SELECT count(*) FROM log")[0][0]
    print(f"Taken in: {count:,} checkpoint records, {len(files)} checkpoint file(s).", file=err)


def _take_checkpoint(
    path: Path, ledger: Ledger, rows: dict[tuple[int, str], int], *, fresh: bool
) -> None:
    try:
        version, base_url = checkpoint_file.header(path)
        table = checkpoint_file.read_table(path, version)
    except Exception:  # a damaged set-aside file: what it held is not readable anyway
        if path.name == CHECKPOINT:
            raise
        return
    started = str(table["t"][0].as_py()) if table.num_rows else ""
    command = ledger.begin(
        f"v3-{path.name}", "run", started_at=started, base_url=base_url, fresh=fresh, pid=0
    )
    n = table.num_rows
    f = table["f"].to_pylist()
    cols = {
        name: pc.fill_null(pc.cast(table[name], pa.string()), "").to_pylist() for name in "gsmkcpt"
    }
    one_line = {m: " ".join(m.split()) for m in set(cols["m"])}  # as Ledger.record keeps it
    # v3: any later record settled a write
    settles = pc.cast(pc.not_equal(pc.cast(table["s"], pa.string()), WRITING), pa.int64())
    ledger.take_lines(
        command,
        [
            cols["t"],
            [rows.get(key) for key in zip(f, cols["g"])],
            f,
            cols["g"],
            cols["p"],
            cols["s"],
            cols["c"],
            cols["k"],
            table["h"].to_pylist(),
            [one_line[m] for m in cols["m"]],
            settles.to_pylist(),
        ],
    )
    ledger.end(command, ended_at=cols["t"][n - 1] or "" if n else "", exit_code=0)


def _summaries(out: Path) -> list[tuple[Path, dict[str, Any]]]:
    runs = out / RUNS
    found = []
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        try:
            data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append((folder, data))
    return found


def _take_command(folder: Path, s: dict[str, Any], ledger: Ledger) -> None:
    kind = _KINDS.get(str(s.get("kind", "run")), "run")
    if kind == "undo" and s.get("dry_run"):
        kind = "undo_dry_run"
    command = ledger.begin(
        folder.name,
        kind,
        started_at=str(s.get("started_at", "")),
        user=str(s.get("user", "")),
        host=str(s.get("host", "")),
        input=str(s.get("input", "")),
        input_sha256=str(s.get("input_sha256", "")),
        base_url=str(s.get("base_url", "")),
        plan_run_id=s.get("plan"),
        pid=0,
    )
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


def _rows_by_pair(out: Path) -> dict[tuple[int, str], int]:
    """(fusebillId, geotabId) -> the sheet row of its newest outcome in a v3 run folder."""
    rows: dict[tuple[int, str], int] = {}
    runs = out / RUNS
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        try:
            table = feather.read_table(str(folder / "outcomes.arrow"))
        except Exception:  # none, or damaged: those rows stay without a sheet row
            continue
        if "fusebillId" not in table.column_names:
            continue
        for r, fid, gid in zip(
            table["row"].to_pylist(),
            table["fusebillId"].to_pylist(),
            table["geotabId"].to_pylist(),
        ):
            if fid and str(fid).isdigit():
                rows[(int(fid), gid or "")] = int(r)
    return rows
