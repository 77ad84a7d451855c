"""The job's memory across ``--fresh``: the checkpoints it set aside, and every record it
keeps for its API (what undo must put back and a customer's story both come from here).

``--fresh`` (or re-binding a job no answer came to) renames the live checkpoint to
``checkpoint-<UTC time>.csv.old`` beside it; those files stay the job's memory.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from batch_latch.errors import CheckpointError
from batch_latch.jobfolder.checkpoint import FILENAME, Records, no_records, read_records

#: A checkpoint set aside by ``--fresh`` (or by re-binding an unanswered job).
SET_ASIDE_GLOB = "checkpoint-*.csv.old"


def set_aside(out_dir: Path) -> list[Path]:
    """The job's set-aside checkpoints, oldest first (their names sort by time)."""
    return sorted(p for p in out_dir.glob(SET_ASIDE_GLOB) if p.is_file())


def remembered(out_dir: Path, base_url: str, current: Records | None = None) -> Records:
    """Every record the job keeps for ``base_url``: its set-aside checkpoints made against
    that API (oldest first), then ``current`` (the live checkpoint's records, when given)."""
    tables = []
    for path in set_aside(out_dir):
        try:
            tables.append(read_records(path, base_url)[1].table)
        except (CheckpointError, OSError):
            continue  # another API's, or not a checkpoint: not this job's memory for this API
    if current is not None:
        tables.append(current.table)
    return Records(pa.concat_tables(tables)) if tables else no_records()


def job_records(out_dir: Path) -> Records:
    """Every record the job in ``out_dir`` remembers, read only: its set-aside checkpoints
    of the API it is bound to, then the live checkpoint."""
    path = out_dir / FILENAME
    if not path.is_file() or not path.stat().st_size:
        return no_records()
    base_url, current = read_records(path)
    return remembered(out_dir, base_url, current)
