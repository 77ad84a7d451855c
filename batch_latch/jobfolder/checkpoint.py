"""What earlier runs achieved, keyed by the (fusebillId, geotabId) pair, durable row by row.

An append-only CSV journal (``checkpoint.csv`` in ``--out``) rather than SQLite: appending a
line is O(1) whatever the file's size, a line is flushed and fsynced before its row counts
as done, a crash can tear at most the last line (cut off when the file is next opened),
ops can read it with any text tool, and Arrow's multi-threaded reader takes a million
lines in a fraction of a second. Workers that finish together share one fsync (group
commit). Line breaks never occur inside a record: geotabIds cannot hold control
characters and messages are folded onto one line.

The first line names the API the outcomes were sent to, so a sandbox rehearsal in the same
folder is never taken for real latches.

Besides each row's outcome, a record keeps the ``change`` it made and ``previous``: what the
customer held before this job first changed it, so ``undo`` can put it back. The file owns
its schema (``earlier.py``, its companion, reads the records to say what earlier runs
settled and what undo must restore).
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.clock import file_stamp, utc_now
from batch_latch.errors import CheckpointError, why
from batch_latch.jobfolder.checkpoint_file import (
    FILENAME,
    FORMAT,
    SCHEMA,
    WRITING,
    header,
    made_for,
    read_table,
    renumber,
    repair_torn_tail,
    rewrite,
    start,
    sync,
)

__all__ = [
    "FILENAME",
    "FORMAT",
    "WRITING",
    "Checkpoint",
    "JournalWriteError",
    "Record",
    "Records",
    "made_for",
    "no_records",
    "read_records",
]


@dataclass(frozen=True)
class Records:
    """Every record of the job, in the order written, as columns: the one place the file's
    one-letter column names are spelled (the lookups in ``earlier`` use these names)."""

    table: pa.Table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def fusebill_id(self) -> np.ndarray:
        return np.asarray(self.table["f"].to_numpy(), dtype=np.int64)

    @property
    def geotab_id(self) -> pa.ChunkedArray:
        return self.table["g"]

    @property
    def status(self) -> pa.ChunkedArray:
        return self.table["s"]

    @property
    def http_status(self) -> pa.ChunkedArray:
        return self.table["h"]

    @property
    def message(self) -> pa.ChunkedArray:
        return self.table["m"]

    @property
    def error_key(self) -> pa.ChunkedArray:
        return self.table["k"]

    @property
    def change(self) -> pa.ChunkedArray:
        return self.table["c"]

    @property
    def previous(self) -> pa.ChunkedArray:
        """What the customer held before the job first changed it."""
        return self.table["p"]

    @property
    def finished_at(self) -> pa.ChunkedArray:
        return self.table["t"]


@dataclass(frozen=True)
class Record:
    fusebill_id: int
    geotab_id: str
    status: str
    http_status: int | None
    message: str
    error_key: str
    finished_at: str
    change: str = ""
    previous: str = ""  # what the customer held before the job first changed it

    def fields(self) -> list[object]:
        return [
            self.fusebill_id,
            self.geotab_id,
            self.status,
            "" if self.http_status is None else self.http_status,
            " ".join(self.message.split()),
            self.error_key,
            self.change,
            self.previous,
            self.finished_at,
        ]

    def line(self) -> bytes:
        return _csv_lines([self])


def _csv_lines(records: list[Record]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(r.fields() for r in records)
    return out.getvalue().encode("utf-8")


class JournalWriteError(CheckpointError):
    """Recording an outcome failed mid-run (disk full...): some requests were already sent."""

    exit_code = 3


class Checkpoint:
    """Single writer; ``record`` returns only once the line is on disk."""

    def __init__(self, path: Path, handle: io.BufferedWriter, earlier: pa.Table) -> None:
        self.path = path
        self.records = Records(earlier)  # every record, in the order written
        self._handle = handle
        self._cond = threading.Condition()
        self._queue: list[bytes] = []
        self._queued = 0  # sequence number of the last line queued
        self._durable = 0  # sequence number of the last line synced
        self._writing = False
        self._failure: OSError | None = None

    @classmethod
    def open(cls, out_dir: Path, base_url: str, *, fresh: bool = False) -> Checkpoint:
        path = out_dir / FILENAME
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            if fresh and path.exists():
                stamp = file_stamp(utc_now())
                path.replace(path.with_name(f"checkpoint-{stamp}.csv.old"))
            if path.exists() and path.stat().st_size == 0:
                raise CheckpointError(
                    f"checkpoint {path} is empty (0 bytes): what this job latched, and what undo "
                    "would put back, is gone; restore it from a backup, or move it away or use "
                    "--fresh (earlier successes would then be sent again)"
                )
            earlier: pa.Table | None = None
            if path.exists():
                repair_torn_tail(path)
                version, earlier = _bind(path, base_url)
            if earlier is None:
                handle = start(path, base_url)
                earlier = SCHEMA.empty_table()
            else:
                if version == 2:  # the same lines: only the header's format number moves on
                    renumber(path, base_url)
                elif version != FORMAT:
                    rewrite(path, base_url, earlier)
                handle = path.open("ab")
        except OSError as exc:
            where = exc.filename or path
            raise CheckpointError(f"cannot use checkpoint {where}: {why(exc)}") from None
        return cls(path, handle, earlier)

    def record(self, record: Record) -> None:
        """Append and fsync; callers that arrive while a sync runs share the next one."""
        with self._cond:
            self._queue.append(record.line())
            self._queued += 1
            mine = self._queued
            while self._durable < mine:
                if self._failure is not None:
                    why = self._failure.strerror or "I/O error"
                    raise JournalWriteError(
                        f"cannot write checkpoint {self.path} ({why}): the run stopped; "
                        "outcomes recorded so far are kept; free the disk, then run the same "
                        "command again"
                    )
                if self._writing:
                    self._cond.wait()
                    continue
                batch, upto = self._queue, self._queued
                self._queue, self._writing = [], True
                self._cond.release()
                try:
                    self._handle.write(b"".join(batch))
                    sync(self._handle)
                except OSError as exc:
                    self._failure = exc
                finally:
                    self._cond.acquire()
                    self._writing = False
                    if self._failure is None:
                        self._durable = upto
                    self._cond.notify_all()

    def record_many(self, records: list[Record]) -> None:
        """Bulk append with one fsync (benchmarks and imports)."""
        with self._cond:
            self._handle.write(_csv_lines(records))
            sync(self._handle)

    def close(self) -> None:
        """Close the file. After a failed write (disk full...) its buffer cannot be flushed
        either: that is the write error again, said with what to do about it."""
        with self._cond:
            try:
                self._handle.close()
            except OSError as exc:
                self._failure = self._failure or exc
            if self._failure is not None:
                raise JournalWriteError(
                    f"cannot write checkpoint {self.path}: {why(self._failure)}; the run "
                    "stopped and every outcome recorded so far is kept (the same command goes "
                    "on where it stopped)"
                )


def _mismatch(path: Path, made_for: str, base_url: str) -> CheckpointError:
    return CheckpointError(
        f"the job in {path.parent} is bound to {made_for} (its checkpoint holds answers from "
        f"that API), not {base_url}: check FUSEBILL_BASE_URL, or use another --out for "
        f"{base_url}"
    )


def _bind(path: Path, base_url: str) -> tuple[int, pa.Table | None]:
    """(format, records) of an existing checkpoint for ``base_url``. A job is bound to its
    API only once an answer came from it: a checkpoint of another URL that holds no outcome
    (only its header, or only write-ahead records of writes nobody answered) is not bound,
    so it is set aside (records: None, a new one is started) instead of refused."""
    version, made_for = header(path)
    if made_for == base_url:
        return version, read_table(path, version)
    table = read_table(path, version)
    if pc.any(pc.not_equal(table["s"].cast(pa.string()), WRITING)).as_py():
        raise _mismatch(path, made_for, base_url)
    if table.num_rows:  # kept for undo under its own URL, should a write have landed there
        path.replace(path.with_name(f"checkpoint-{file_stamp(utc_now())}.csv.old"))
    else:
        path.unlink()
    return FORMAT, None


def read_records(path: Path, base_url: str | None = None) -> tuple[str, Records]:
    """(the API it was made against, its records) of a checkpoint file, read only (no lock,
    no upgrade; a line a running command is still appending is left out). With
    ``base_url``, a checkpoint of another API is refused (``CheckpointError``)."""
    version, made_against = header(path)
    if base_url is not None and made_against != base_url:
        raise _mismatch(path, made_against, base_url)
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    return made_against, Records(read_table(path, version, data))


def no_records() -> Records:
    return Records(SCHEMA.empty_table())
