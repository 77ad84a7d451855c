"""The job's ledger, ``OUT/job.db``: the one owner of what the job did.

One SQLite database (stdlib ``sqlite3``, WAL, ``synchronous=FULL``): every command
(``commands``), every row's outcome and every write recorded before it is sent (``log``),
and the valid rows of each input a command read (``sheets``, ``sheet_rows``). The reports
of a command are its own; ``status``, ``status --customer``, ``undo``, ``run --plan`` and
the next run's re-run rules are all derived from this file, through the views of ``ledger_views``.

Durability: a write's intent (status ``writing``) is committed before the request leaves;
an outcome before its row counts as done. Workers that finish together share one commit
(group commit), as the v3 checkpoint shared one fsync. A write that never left is taken
back (its intent deleted), so nothing that was not sent is ever shown as sent.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_latch.errors import CheckpointError, why
from batch_latch.jobfolder import ledger_views, whole_state
from batch_latch.jobfolder.records import Records, from_rows
from batch_latch.vocab import CommandKind

T = TypeVar("T")

FILENAME = "job.db"
#: ``PRAGMA user_version`` of the database this code writes; a newer one is refused.
#: Format 4: ``customer_state.blind`` (undo's targets read from the kept state).
FORMAT = 4
#: The status of a write-ahead record: sent (or about to be), its answer not recorded yet.
WRITING = "writing"
#: What a write-ahead record says, shown when it is read back.
WRITING_NOTE = ledger_views.WRITING_NOTE


def said(status: str | None, message: str | None) -> str:
    """A line's message as shown: a write-ahead record's is :data:`WRITING_NOTE`."""
    return message or (WRITING_NOTE if status == WRITING else "")


#: Kinds whose outcomes count for the re-run rules and undo (a plan only reads).
SENDING_KINDS = (CommandKind.RUN.value, CommandKind.UNDO.value)

_SCHEMA = """
CREATE TABLE commands (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,          -- the command's run folder name
    kind TEXT NOT NULL,            -- vocab.CommandKind: run, plan, dry_run, undo, undo_dry_run
    started_at TEXT NOT NULL,
    ended_at TEXT,                 -- null while it runs, or after a kill
    user TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    input TEXT NOT NULL DEFAULT '',
    input_sha256 TEXT NOT NULL DEFAULT '',
    base_url TEXT NOT NULL DEFAULT '',
    plan_run_id TEXT,
    exit_code INTEGER,
    requests INTEGER NOT NULL DEFAULT 0,
    fresh INTEGER NOT NULL DEFAULT 0,  -- --fresh: earlier outcomes no longer settle rows
    rows INTEGER,                  -- the input's non-blank rows (undo: customers)
    invalid INTEGER,               -- of which invalid
    stop_reason TEXT
);
CREATE TABLE requests_by_day (
    command INTEGER NOT NULL REFERENCES commands(id),
    day TEXT NOT NULL,
    requests INTEGER NOT NULL
);
CREATE TABLE log (
    seq INTEGER PRIMARY KEY,       -- the order things happened in
    command INTEGER NOT NULL REFERENCES commands(id),
    at TEXT NOT NULL,
    row INTEGER,                   -- the sheet row (null: not known, e.g. imported)
    fusebill_id INTEGER NOT NULL,
    geotab_id TEXT NOT NULL,       -- what was (or would be) written; an undo: what it restored
    previous TEXT NOT NULL DEFAULT '',  -- what the customer held before the job's first change
    status TEXT NOT NULL,          -- a row's status, or 'writing'
    change TEXT NOT NULL DEFAULT '',
    error_key TEXT NOT NULL DEFAULT '',
    http_status INTEGER,
    message TEXT NOT NULL DEFAULT '',
    settles INTEGER NOT NULL DEFAULT 0  -- Fusebill's answer showed what the customer holds
);
"""
#: The log's indexes (the row index: see _ROW_INDEX).
_LOG_INDEXES = """
CREATE INDEX log_customer ON log(fusebill_id, seq);
CREATE INDEX log_row ON log(row, seq) WHERE status != 'writing';
"""
#: The valid rows of each input, once per distinct file (format 2; the view ``inputs`` in
#: ``ledger_views`` shows them with their file's SHA-256, as format 1's table did). The
#: SHA-256 is kept once a file, not once a row: 64 bytes a row, twice with its index.
_SHEETS = """
CREATE TABLE sheets (
    id INTEGER PRIMARY KEY,
    input_sha256 TEXT NOT NULL UNIQUE
);
CREATE TABLE sheet_rows (
    sheet INTEGER NOT NULL REFERENCES sheets(id),
    row INTEGER NOT NULL,
    fusebill_id INTEGER NOT NULL,
    geotab_id TEXT NOT NULL,
    PRIMARY KEY (sheet, row)
) WITHOUT ROWID;
"""
#: Format 3: a sheet row's lines are looked up for the pairs a later line of the row makes
#: ``fixed``, which only outcomes can be or make (not a write's intent: about half the lines).
_ROW_INDEX = """
DROP INDEX log_row;
CREATE INDEX log_row ON log(row, seq) WHERE status != 'writing';
"""
#: Format 1 to 2: its ``inputs`` table into ``sheets`` and ``sheet_rows``.
_FROM_FORMAT_1 = """
INSERT INTO sheets (input_sha256) SELECT DISTINCT input_sha256 FROM inputs;
INSERT OR IGNORE INTO sheet_rows
  SELECT s.id, i.row, i.fusebill_id, i.geotab_id FROM inputs i JOIN sheets s USING (input_sha256);
DROP TABLE inputs;
"""


#: Lines written at once from which the state is made set-wise (see ``ledger_views.bulk``).
BULK = 1000
#: The columns of a line as ``Ledger.take_lines`` takes them: ``log``'s after seq and command.
LINE_COLUMNS = (
    "at",
    "row",
    "fusebill_id",
    "geotab_id",
    "previous",
    "status",
    "change",
    "error_key",
    "http_status",
    "message",
    "settles",
)


def _line(seq: int, command: int, e: Entry) -> tuple[object, ...]:
    """An entry as a row of ``log``."""
    message = " ".join(e.message.split())
    head = (seq, command, e.at, e.row, e.fusebill_id, e.geotab_id, e.previous, e.status)
    return (*head, e.change, e.error_key, e.http_status, message, int(e.settles))


def as_lines(entries: Sequence[Entry]) -> pa.Table:
    """Entries as the columns :meth:`Ledger.take_lines` takes."""
    types = {"row": pa.int64(), "fusebill_id": pa.int64(), "http_status": pa.int64()}
    types["settles"] = pa.bool_()
    return pa.table(
        {
            name: pa.array([getattr(e, name) for e in entries], types.get(name, pa.string()))
            for name in LINE_COLUMNS
        }
    )


def _values(column: pa.ChunkedArray, *, message: bool = False) -> list[Any]:
    """A column's values for ``executemany``; a string's repeated values as one object each
    (a million lines carry a few hundred statuses, times, messages), a message on one line."""
    if column.type == pa.bool_():
        column = pc.cast(column, pa.int64())
    if not (pa.types.is_string(column.type) or pa.types.is_dictionary(column.type)):
        return list(column.to_pylist())
    coded = pc.dictionary_encode(column).combine_chunks()
    words = coded.dictionary.to_pylist()
    if message:
        words = [" ".join(w.split()) for w in words]
    table = np.array([*words, None], dtype=object)
    codes = pc.fill_null(coded.indices, len(words)).to_numpy()
    return list(table[codes].tolist())


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column with its values, not a dictionary's codes."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


class LedgerError(CheckpointError):
    """``job.db`` cannot be used (not a database, damaged, newer, empty): exit 2."""


class LedgerWriteError(LedgerError):
    """Recording failed mid-command (disk full...): exit 3 once requests went out, else 2
    (the command that catches it knows which; until then, assume they did)."""

    exit_code = 3

    def nothing_sent(self) -> LedgerWriteError:
        """The same failure where no request had gone out yet (exit 2)."""
        early = LedgerWriteError(str(self))
        early.exit_code = 2
        return early


@dataclass(frozen=True)
class Entry:
    """One line of the log: an outcome, or a write's intent (status ``writing``)."""

    fusebill_id: int
    geotab_id: str
    status: str
    change: str = ""
    previous: str = ""
    error_key: str = ""
    http_status: int | None = None
    message: str = ""
    at: str = ""
    row: int | None = None
    settles: bool = False


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA synchronous=FULL")
    db.create_function("REGEXP", 2, _regexp, deterministic=True)
    return db


def _regexp(pattern: str, value: str | None) -> bool:
    """SQLite's ``x REGEXP y`` (it has the operator, not the function)."""
    return value is not None and re.search(pattern, value) is not None


def _no_space(exc: sqlite3.Error) -> bool:
    """SQLite's way of saying the disk is full: ``SQLITE_FULL``, or the WAL index (``-shm``)
    that could not grow (``SQLITE_IOERR_SHMSIZE``, a bare "disk I/O error")."""
    name = getattr(exc, "sqlite_errorname", "")
    return "full" in str(exc) or name in ("SQLITE_FULL", "SQLITE_IOERR_SHMSIZE")


def _damaged(path: Path, what: str) -> LedgerError:
    return LedgerError(
        f"{path} {what}: it is this job's memory (what undo puts back); restore it from a "
        "backup, or move the job folder's job.db away to start a new job there"
    )


def check(out_dir: Path) -> Checking:
    """Refuse, before the input is read, a ``job.db`` that cannot be this job's ledger: one
    that is empty, not a database or from a newer version at once; damage in pages opening
    does not read (the log's) only in a full read, which goes on in the background: the
    command waits for it (:meth:`Checking.wait`) before it writes, sends or reads its input."""
    path = out_dir / FILENAME
    if not path.exists():
        return Checking(path, None)
    ledger = Ledger.open(out_dir, create=False)
    return Checking(path, ledger)


class Checking:
    """``PRAGMA quick_check`` of a ledger on its own connection and thread (SQLite lets go
    of the GIL while it reads): a command reads what it needs meanwhile (undo its targets),
    and a 300 MB job.db's full read costs it no time on a second core."""

    def __init__(self, path: Path, ledger: Ledger | None) -> None:
        self._path = path
        self._found: list[tuple[Any, ...]] | Exception = [("ok",)]
        self._thread: threading.Thread | None = None
        if ledger is not None:
            self._thread = threading.Thread(target=self._run, args=(ledger,), daemon=True)
            self._thread.start()

    def _run(self, ledger: Ledger) -> None:
        try:
            self._found = ledger.query("PRAGMA quick_check(1)")
        except Exception as exc:  # told by wait(), on the command's thread
            self._found = exc
        finally:
            ledger.close()

    def wait(self) -> None:
        """The check's verdict: a damaged ledger is one ``LedgerError``."""
        if self._thread is not None:
            self._thread.join()
        found = self._found
        if isinstance(found, LedgerError):
            raise found
        if isinstance(found, sqlite3.DatabaseError):
            raise _damaged(self._path, f"is damaged ({found})")
        if isinstance(found, Exception):
            raise found
        if found != [("ok",)]:
            raise _damaged(self._path, f"is damaged ({' '.join(str(found[0][0]).split())[:100]})")

    def __enter__(self) -> Checking:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:  # never left running behind the command
            self._thread.join()

    def read_meanwhile(self, read: Callable[[], T]) -> T:
        """``read()`` while the check goes on, then the check's verdict: a damaged ledger's
        line comes first, also when the read failed on the damage."""
        try:
            got = read()
        except Exception:
            self.wait()
            raise
        self.wait()
        return got


class Ledger:
    """The job's ledger; writes come from many workers, commits are shared."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self._db = db
        self._cond = threading.Condition()
        self._queue: list[tuple[str, tuple[object, ...]]] = []
        self._queued = self._durable = 0
        self._writing = False
        self._failure: Exception | None = None
        self._failure_raised = False  # close() raises a failure no caller has heard of
        self._seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()[0])
        self._taken: list[pa.Table] = []  # the lines taken in whole, for their state

    # --- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, out_dir: Path, *, create: bool = True, name: str = FILENAME) -> Ledger:
        path = out_dir / name
        exists = path.exists()
        if not exists and not create:
            raise LedgerError(f"{out_dir} holds no {FILENAME}")
        try:
            if exists and path.stat().st_size == 0:
                raise _damaged(path, "is empty (0 bytes)")
            if exists:
                with path.open("rb") as handle:
                    if handle.read(16) != b"SQLite format 3\x00":
                        raise _damaged(path, "is not a database")
            else:
                out_dir.mkdir(parents=True, exist_ok=True)
            db = _connect(path)
        except OSError as exc:
            raise LedgerError(f"cannot use {path}: {why(exc)}") from None
        except sqlite3.DatabaseError as exc:
            if _no_space(exc):
                raise LedgerError(f"cannot write {path}: {why(OSError(28, str(exc)))}") from None
            raise _damaged(path, f"cannot be opened ({exc})") from None
        try:
            cls._prepare(db, path, new=not exists)
        except sqlite3.DatabaseError as exc:
            db.close()
            if _no_space(exc):
                raise LedgerError(f"cannot write {path}: {why(OSError(28, str(exc)))}") from None
            raise _damaged(path, f"is damaged ({exc})") from None
        except LedgerError:
            db.close()
            raise
        return cls(path, db)

    @staticmethod
    def _prepare(db: sqlite3.Connection, path: Path, *, new: bool) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > FORMAT:
            raise LedgerError(
                f"{path} was written by a newer batch-latch (job format {version}; this one "
                f"reads {FORMAT}): run this job with the newer batch-latch that wrote it; the file "
                "is left as it is"
            )
        if version == 0:
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables and not new:
                raise _damaged(path, "is not a batch-latch job database")
        # Only once the file is known to be ours: switching to WAL rewrites its header.
        db.execute("PRAGMA journal_mode=WAL")
        if version == 0:
            script = (
                _SCHEMA
                + _LOG_INDEXES
                + _SHEETS
                + ledger_views.STATE
                + ledger_views.VIEWS
                + ledger_views.STATE_TRIGGERS
                + f"PRAGMA user_version={FORMAT};"
            )
            db.executescript(f"BEGIN IMMEDIATE;{script}COMMIT;")
            return
        db.execute("SELECT count(*) FROM commands").fetchone()
        views = {str(v) for (v,) in db.execute("SELECT sql FROM sqlite_master WHERE type='view'")}
        triggers = {
            str(t) for (t,) in db.execute("SELECT sql FROM sqlite_master WHERE type='trigger'")
        }
        same_triggers = triggers == ledger_views.trigger_statements()
        if version == FORMAT and views == ledger_views.statements() and same_triggers:
            return
        # An older format, or views of an older build: brought up to date in one transaction.
        # Before format 3 the state the views read is built from the whole log (once).
        names = [n for n in ledger_views.NAMES if version > 1 or n != "inputs"]  # 1: a table
        drop = "".join(f"DROP VIEW IF EXISTS {name};" for name in names)
        older = _SHEETS + _FROM_FORMAT_1 if version == 1 else ""
        older += _ROW_INDEX + ledger_views.STATE if version < 3 else ""
        older += ledger_views.ADD_BLIND if version == 3 else ""
        rules = "".join(f"DROP TRIGGER IF EXISTS {name};" for name in ledger_views.TRIGGERS)
        rules += ledger_views.STATE_TRIGGERS
        fill = ledger_views.FILL_STATE if version < 3 or not same_triggers else ""
        fill = ledger_views.FILL_CUSTOMERS if version == 3 else fill  # its pairs' state holds
        script = drop + older + ledger_views.VIEWS + rules + fill
        script += f"PRAGMA user_version={FORMAT};"
        try:
            db.executescript(f"BEGIN IMMEDIATE;{script}COMMIT;")
        except sqlite3.OperationalError as exc:
            if db.in_transaction:
                db.rollback()
            if version != FORMAT:  # an older format must be brought up to date to be read
                raise LedgerError(
                    f"cannot bring {path} up to this batch-latch's format {FORMAT} ({exc}): "
                    "make the job folder writable and run again; the file is left as it is"
                ) from None
            # read-only, today's format: its own views serve this command

    # --- commands -------------------------------------------------------------------------

    def begin(
        self,
        run_id: str,
        kind: CommandKind | str,
        *,
        started_at: str,
        user: str = "",
        host: str = "",
        input: str = "",
        input_sha256: str = "",
        base_url: str = "",
        plan_run_id: str | None = None,
        fresh: bool = False,
        pid: int | None = None,
        rows: int | None = None,
        invalid: int | None = None,
    ) -> int:
        """A command starts: its row in ``commands``, durable at once (with its input's
        rows and invalid rows when known, so a running or killed command has them)."""
        values = (
            run_id,
            str(kind),
            started_at,
            user,
            host,
            os.getpid() if pid is None else pid,
            input,
            input_sha256,
            base_url,
            plan_run_id,
            int(fresh),
            rows,
            invalid,
        )
        with self._cond:
            cur = self._exec(
                "INSERT INTO commands (run_id, kind, started_at, user, host, pid, input, "
                "input_sha256, base_url, plan_run_id, fresh, rows, invalid) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                values,
            )
            self.command = int(cur.lastrowid or 0)
            return self.command

    def end(
        self,
        command: int,
        *,
        ended_at: str,
        exit_code: int,
        requests: int | None = None,
        rows: int | None = None,
        invalid: int | None = None,
        stop_reason: str | None = None,
        by_day: dict[str, int] | None = None,
    ) -> None:
        """The command ended (any way but a kill): its end, exit code and costs. What is not
        given keeps what was recorded (a stop after the reports keeps their counts)."""
        self.flush()
        with self._cond:
            self._exec(
                "UPDATE commands SET ended_at=?, exit_code=?, requests=COALESCE(?, requests, 0), "
                "rows=COALESCE(?, rows), invalid=COALESCE(?, invalid), "
                "stop_reason=COALESCE(?, stop_reason) WHERE id=?",
                (ended_at, exit_code, requests, rows, invalid, stop_reason, command),
            )
            for day, n in (by_day or {}).items():
                self._exec("INSERT INTO requests_by_day VALUES (?,?,?)", (command, day, n))

    def forget(self, command: int) -> None:
        """A command refused before it did anything (exit 2) leaves no trace."""
        with self._cond:
            self._exec(
                "DELETE FROM commands WHERE id=? AND NOT EXISTS "
                "(SELECT 1 FROM log WHERE command=?)",
                (command, command),
            )

    def remember_input(self, sha: str, rows: np.ndarray, fids: np.ndarray, gids: pa.Array) -> None:
        """The valid rows of an input, once per distinct file: what is left of it is then
        known during a command and after a kill."""
        if not sha:
            return
        with self._cond:
            have = self._db.execute("SELECT 1 FROM sheets WHERE input_sha256=?", (sha,)).fetchone()
            if have:
                return
            try:
                self._db.execute("BEGIN")
                sheet = self._db.execute("INSERT INTO sheets (input_sha256) VALUES (?)", (sha,))
                self._db.executemany(  # the sheet's id written in: one value fewer a row
                    f"INSERT INTO sheet_rows VALUES ({int(sheet.lastrowid or 0)},?,?,?)",
                    zip(rows.tolist(), fids.tolist(), gids.to_pylist()),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._write_error(exc) from None

    # --- the log --------------------------------------------------------------------------

    def intend(self, entry: Entry) -> int:
        """A write's intent, durable before the request leaves; returns its ``seq``."""
        return self._append([entry], command=self._command_of(entry))[0]

    def withdraw(self, seq: int) -> None:
        """The write never left (a stop before it was sent): its intent is taken back."""
        self._enqueue("DELETE FROM log WHERE seq=?", (seq,))

    def record(self, entry: Entry) -> None:
        self._append([entry], command=self._command_of(entry))

    def record_many(self, entries: Sequence[Entry], command: int) -> None:
        if len(entries) < BULK:
            self._append(entries, command=command)
            return
        # Many lines (a benchmark building a job): one transaction whose state is made set-wise.
        self.flush()
        with self._cond:
            while self._writing:
                self._cond.wait()
            first = self._seq + 1
            before, after = ledger_views.bulk(first, first + len(entries) - 1)
            try:
                self._db.execute("BEGIN")
                for sql in before:
                    self._db.execute(sql)
                self._db.executemany(
                    "INSERT INTO log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (_line(seq, command, e) for seq, e in enumerate(entries, first)),
                )
                for sql in after:
                    self._db.execute(sql)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._write_error(exc) from None
            self._seq += len(entries)

    @contextlib.contextmanager
    def taking_in(self) -> Iterator[None]:
        """A job taken in whole into this new ledger (a v3 job): inside, :meth:`take_lines`
        writes lines without the state the triggers keep line by line (they and the log's
        indexes set aside); at the end the indexes are made once, and the state of every
        pair and customer once (``whole_state`` for the plain ones, the rules for the rest),
        in one transaction. A million lines so take seconds, not a minute. Left by an error,
        the ledger is to be thrown away (the import's file is): no journal is kept meanwhile
        (each page written once, not to the WAL and again to the file)."""
        self.flush()
        if self._seq:
            raise ValueError(f"{self.path} already holds lines: only a new ledger is taken in")
        drop = "".join(f"DROP TRIGGER {name};" for name in ledger_views.TRIGGERS)
        with self._cond:
            self._db.execute("PRAGMA cache_size=-262144")  # 256 MiB: the indexes built in memory
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.executescript(
                f"BEGIN;{drop}DROP INDEX log_customer;DROP INDEX log_row;COMMIT;"
            )
        self._taken = []
        yield
        with self._cond:
            try:
                self._db.execute("BEGIN")
                self._make_state()
                self._db.execute("COMMIT")
                self._db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._write_error(exc) from None

    def take_lines(self, command: int, lines: pa.Table) -> None:
        """Lines of ``command`` taken in whole (within :meth:`taking_in`), as columns named
        :data:`LINE_COLUMNS`, in one transaction: no ``Entry`` a line, the values shared."""
        n = lines.num_rows
        values = [_values(lines[name], message=name == "message") for name in LINE_COLUMNS]
        with self._cond:
            first = self._seq + 1
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    f"INSERT INTO log VALUES (?,{int(command)},?,?,?,?,?,?,?,?,?,?,?)",
                    zip(range(first, first + n), *values),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._write_error(exc) from None
            self._seq += n
        state = [pa.array(np.arange(first, first + n, dtype=np.int64))]
        state.append(pa.array(np.full(n, command, np.int64)))
        state += [_decoded(lines[name]) for name in whole_state.COLUMNS[2:]]
        self._taken.append(pa.table(state, names=list(whole_state.COLUMNS)))

    def _make_state(self) -> None:
        """The indexes and the state of every line taken in (see :meth:`taking_in`)."""
        for sql in _LOG_INDEXES.split(";")[:-1]:
            self._db.execute(sql)
        sending = [
            int(i)
            for (i,) in self._db.execute(f"SELECT id FROM commands WHERE kind IN {SENDING_KINDS}")
        ]
        lines = pa.concat_tables(self._taken, promote_options="permissive")
        state = whole_state.plain_state(lines, sending)
        self._taken = []
        self._db.executemany(
            "INSERT INTO pair_state (fusebill_id, geotab_id, status, command, row, error_key) "
            "VALUES (?,?,?,?,?,?)",
            state.pairs,
        )
        self._db.executemany(
            "INSERT INTO customer_state (fusebill_id, before, holds_seq, state, blind) "
            "VALUES (?,?,?,?,?)",
            state.customers,
        )
        for name, ids, fill in (
            ("rules_pairs", state.rules_pairs, ledger_views.fill_pairs),
            ("rules_customers", state.rules_customers, ledger_views.fill_customers),
        ):
            self._db.execute(f"CREATE TEMP TABLE {name} (fusebill_id INTEGER PRIMARY KEY)")
            self._db.executemany(f"INSERT INTO temp.{name} VALUES (?)", ((i,) for i in ids))
            for sql in fill(f"(SELECT fusebill_id FROM temp.{name})"):
                self._db.execute(sql)
            self._db.execute(f"DROP TABLE temp.{name}")
        for sql in ledger_views.COUNT_STATE.split(";")[:-1]:
            self._db.execute(sql)
        for sql in ledger_views.trigger_statements():
            self._db.execute(sql)

    #: The command a worker's entries belong to (one command at a time holds the job).
    command: int = 0

    def _command_of(self, entry: Entry) -> int:
        return self.command

    def _append(self, entries: Sequence[Entry], *, command: int) -> list[int]:
        seqs = []
        with self._cond:
            for e in entries:
                self._seq += 1
                seqs.append(self._seq)
                self._queue.append(
                    (
                        "INSERT INTO log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        _line(self._seq, command, e),
                    )
                )
            self._queued += 1
            self._wait_durable(self._queued)
        return seqs

    def _enqueue(self, sql: str, args: tuple[object, ...]) -> None:
        with self._cond:
            self._queue.append((sql, args))
            self._queued += 1
            self._wait_durable(self._queued)

    def flush(self) -> None:
        with self._cond:
            self._wait_durable(self._queued)

    def _wait_durable(self, mine: int) -> None:
        """Commit what is queued; callers that arrive while a commit runs share the next."""
        while self._durable < mine:
            if self._failure is not None:
                self._failure_raised = True
                raise self._write_error(self._failure)
            if self._writing:
                self._cond.wait()
                continue
            batch, upto = self._queue, self._queued
            self._queue, self._writing = [], True
            self._cond.release()
            try:
                self._db.execute("BEGIN")
                for sql, same in itertools.groupby(batch, key=lambda item: item[0]):
                    self._db.executemany(sql, (args for _, args in same))  # in order
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._failure = exc
            finally:
                self._cond.acquire()
                self._writing = False
                if self._failure is None:
                    self._durable = upto
                self._cond.notify_all()

    def _exec(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        """One statement, committed at once (called with the condition held)."""
        while self._writing:
            self._cond.wait()
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise self._write_error(exc) from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def _write_error(self, exc: Exception) -> LedgerWriteError:
        text = str(exc)
        no_space = isinstance(exc, sqlite3.Error) and _no_space(exc)
        cause = why(OSError(28, text)) if no_space else text
        return LedgerWriteError(
            f"cannot write {self.path} ({cause}): the command stopped; every outcome "
            "recorded so far is kept (the same command goes on where it stopped)"
        )

    # --- reading --------------------------------------------------------------------------

    def query(self, sql: str, args: Iterable[object] = ()) -> list[tuple[Any, ...]]:
        with self._cond:
            while self._writing:
                self._cond.wait()
            try:
                return list(self._db.execute(sql, tuple(args)))
            except sqlite3.DatabaseError as exc:
                raise _damaged(self.path, f"cannot be read ({exc})") from None

    def bound_to(self) -> str | None:
        """The API the job is bound to: the one an answer in Fusebill's format came from
        (a line other than a write's intent). None: no answer came yet."""
        got = self.query(
            "SELECT c.base_url FROM log l JOIN commands c ON c.id = l.command "
            "WHERE l.status != 'writing' AND c.base_url != '' ORDER BY l.seq DESC LIMIT 1"
        )
        return str(got[0][0]) if got else None

    def records(self, base_url: str) -> tuple[Records, int]:
        """Every line of the commands that sent (run, undo) against ``base_url``, in order,
        and where the newest ``--fresh`` start begins among them (0: no such start)."""
        rows = self.query(
            "SELECT l.fusebill_id, l.geotab_id, l.status, l.http_status, l.message, "
            "l.error_key, l.change, l.previous, l.at, l.settles, l.command "
            "FROM log l JOIN commands c ON c.id = l.command "
            f"WHERE c.kind IN {SENDING_KINDS} AND c.base_url = ? ORDER BY l.seq",
            (base_url,),
        )
        fresh = self.query(
            f"SELECT MAX(id) FROM commands WHERE fresh = 1 AND base_url = ? AND kind IN "
            f"{SENDING_KINDS}",
            (base_url,),
        )[0][0]
        start = 0
        if fresh is not None:
            start = next((i for i, r in enumerate(rows) if int(r[10]) >= int(fresh)), len(rows))
        return from_rows(rows), start

    def records_of(self, base_url: str, fids: Iterable[int]) -> Records:
        """The lines :meth:`records` holds of these customers only, in order (found through
        the log's customer index: a few lines each, not every line of the job)."""
        rows = self.query(
            "SELECT l.fusebill_id, l.geotab_id, l.status, l.http_status, l.message, "
            "l.error_key, l.change, l.previous, l.at, l.settles "
            "FROM (SELECT DISTINCT value AS f FROM json_each(?)) a "
            "JOIN log l ON l.fusebill_id = a.f JOIN commands c ON c.id = l.command "
            f"WHERE c.kind IN {SENDING_KINDS} AND c.base_url = ? ORDER BY l.seq",
            (json.dumps([int(f) for f in fids]), base_url),
        )
        return from_rows(rows)

    def close(self) -> None:
        with self._cond:
            failure = None if self._failure_raised else self._failure
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        if failure is not None:
            raise self._write_error(failure)
