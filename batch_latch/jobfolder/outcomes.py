"""Each command's per-row outcomes beside its reports (``outcomes.arrow``): the row, its
pair as the reports show it and its status code, a few bytes a row, for ``status``, the
story and undo's sheet rows; and reading many runs of them without reading each again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from batch_latch.errors import JobFolderError, why
from batch_latch.jobfolder.history import RUNS
from batch_latch.vocab import STATUSES

OUTCOMES = "outcomes.arrow"


def write_outcomes(
    folder: Path,
    row: pa.Array,
    status: pa.Array,
    fusebill_id: pa.Array | None = None,
    geotab_id: pa.Array | None = None,
) -> None:
    """The per-row status of one command, with the row's pair (fusebillId, geotabId as the
    reports show them), for ``status`` (Arrow IPC: read without parsing)."""
    if pa.types.is_dictionary(status.type):  # look each distinct value up once
        names = pc.index_in(status.dictionary.cast(pa.string()), value_set=pa.array(STATUSES))
        codes = pc.take(names, status.indices)
    else:
        codes = pc.index_in(status, value_set=pa.array(STATUSES))
    columns = {"row": row, "status": pc.cast(codes, pa.int8())}
    if fusebill_id is not None and geotab_id is not None:
        columns["fusebillId"] = pc.cast(fusebill_id, pa.string())
        columns["geotabId"] = pc.cast(geotab_id, pa.string())
    table = pa.table(columns)
    try:
        feather.write_feather(table, str(folder / OUTCOMES), compression="uncompressed")
    except OSError as exc:
        raise JobFolderError(f"cannot write {folder / OUTCOMES}: {why(exc)}") from None


def read_outcomes(folder: Path) -> pa.Table | None:
    """A run folder's ``outcomes.arrow`` (memory-mapped); None when it has none.
    ``JobFolderError`` naming it when it cannot be read: counts without it would be wrong."""
    path = folder / OUTCOMES
    if not path.is_file():
        return None
    try:
        return feather.read_table(str(path), memory_map=True)
    except (OSError, pa.ArrowInvalid) as exc:
        raise JobFolderError(
            f"{path} is damaged ({str(exc).splitlines()[0][:80]}); move that run folder away "
            "and try again"
        ) from None


def _same_pairs(a: pa.Table, b: pa.Table, columns: tuple[str, ...]) -> bool:
    return a.num_rows == b.num_rows and all(
        name in a.column_names and name in b.column_names and a[name].equals(b[name])
        for name in columns
    )


def unsuperseded(
    tables: list[pa.Table],
    columns: tuple[str, ...] = ("fusebillId", "geotabId"),
    covers: Callable[[pa.Table, pa.Table], bool] | None = None,
) -> list[pa.Table]:
    """``tables`` (oldest first) without those a later one holds again row for row in
    ``columns``: every pair of such a table has a later outcome. The usual job re-runs the
    same sheet, so 20 runs of 1,000,000 rows come down to one table (compared by memory,
    a few ms each) instead of 20,000,000 rows to hash (docs/benchmarks.md)."""
    kept: list[pa.Table] = []
    for i, table in enumerate(tables):
        if not any(
            _same_pairs(table, later, columns) and (covers is None or covers(later, table))
            for later in tables[i + 1 :]
        ):
            kept.append(table)
    return kept


def _success(table: pa.Table) -> np.ndarray:
    codes = np.asarray(table["status"].to_numpy(), np.int8)
    mask: np.ndarray = codes == STATUSES.index("success")
    return mask


def _latches_again(later: pa.Table, table: pa.Table) -> bool:
    """Every row ``table`` latched is a success in ``later`` too (its row is the later's)."""
    return bool(np.all(_success(later) | ~_success(table)))


def latched_rows(out: Path, fusebill_ids: pa.Array, geotab_ids: pa.Array) -> pa.Array:
    """For each pair asked about, the sheet row a ``run`` of this job latched it from (the
    latest such run's), from its run folders' outcomes; null where no report of the latch
    was kept (a run killed before its reports, or written before pairs were kept)."""
    tables = []
    for folder in sorted(p for p in (out / RUNS).glob("*-run*") if p.is_dir()):
        try:
            table = read_outcomes(folder)
        except JobFolderError:
            continue  # only the undo report's row numbers come from here: left empty
        if table is not None and "fusebillId" in table.column_names:
            tables.append(table)
    found = [
        t.filter(pa.array(_success(t))).select(["fusebillId", "geotabId", "row"])
        for t in unsuperseded(tables, covers=_latches_again)
    ]
    asked = pa.table(
        {
            "fusebillId": pc.cast(fusebill_ids, pa.string()),
            "geotabId": pc.cast(geotab_ids, pa.string()),
            "at": pa.array(np.arange(len(fusebill_ids), dtype=np.int64)),
        }
    )
    if not found:
        return pa.nulls(len(fusebill_ids), pa.int64())
    latched = pa.concat_tables(found)
    # The latest run's row of each pair: the last one in run order (ordered: one thread).
    last = latched.group_by(["fusebillId", "geotabId"], use_threads=False).aggregate(
        [("row", "last")]
    )
    joined = asked.join(last, ["fusebillId", "geotabId"], join_type="left outer")
    joined = joined.sort_by("at")
    return pc.cast(joined["row_last"], pa.int64()).combine_chunks()
