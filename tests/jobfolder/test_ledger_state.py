"""The state ``pairs`` and ``customers`` read (format 3): kept line by line by triggers on
``log`` (and set-wise for many lines at once), it is always what the rules make of the
whole log again (``ledger_views.FILL_STATE``), whatever order the lines came in."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from batch_latch.jobfolder import ledger as ledger_module
from batch_latch.jobfolder.ledger import FILENAME, FORMAT, WRITING, Entry, Ledger
from batch_latch.jobfolder.ledger_views import FILL_STATE, TRIGGERS
from tests.jobfolder.test_ledger_views import URL, intent, line
from tests.ledgers import command

State = tuple[list[tuple[object, ...]], ...]


def state(path: Path) -> State:
    db = sqlite3.connect(path)
    try:
        return tuple(
            list(db.execute(sql))
            for sql in (
                "SELECT * FROM pair_state ORDER BY 1, 2",
                "SELECT * FROM customer_state ORDER BY 1",
                "SELECT * FROM pair_counts WHERE n != 0 ORDER BY 1",
                "SELECT * FROM customer_counts WHERE n != 0 ORDER BY 1",
                "SELECT * FROM pairs ORDER BY 1, 2",
                "SELECT * FROM customers ORDER BY 1",
            )
        )
    finally:
        db.close()


def made_again(out: Path, tmp_path: Path) -> State:
    copy = tmp_path / "again.db"
    shutil.copy(out / FILENAME, copy)
    db = sqlite3.connect(copy, isolation_level=None)
    db.executescript(f"BEGIN;{FILL_STATE}COMMIT;")
    db.close()
    return state(copy)


def story(out: Path) -> None:
    """Every rule at least once: latches, a relatch, refusals, a fix on the same row, an
    intent withdrawn, a write left open then settled, an undo, plans and a dry run."""
    with command(out, URL, "plan") as ledger:
        for e in (line(1, "A", "valid", row=2), line(2, "B", "valid", "relatch", row=3)):
            ledger.record(e)
    with command(out, URL, "run") as ledger:
        ledger.intend(intent(1, "A", row=2))
        ledger.record(line(1, "A", row=2))
        ledger.intend(intent(2, "B", row=3, previous="OLD"))
        ledger.record(line(2, "B", "failed", "", row=3, key="relatch_refused"))
        ledger.record(line(3, "C", "not_found", "", row=4, key="not_found"))
        ledger.record(line(4, "D", "failed", "", row=5, key="http_400"))
        seq = ledger.intend(intent(5, "E", row=6))
        ledger.withdraw(seq)  # never sent
        ledger.intend(intent(6, "F", row=7))  # its answer lost
    with command(out, URL, "run") as ledger:
        ledger.record(line(7, "D", row=5))  # row 5 fixed: another fusebillId
        ledger.record(line(6, "F", "success", "", row=7))  # a read settles it
        ledger.intend(intent(1, "Z", row=2, previous="A"))
        ledger.record(line(1, "Z", "success", "relatch", row=2, previous="A"))
        ledger.intend(intent(8, "H", row=9))  # left open
    with command(out, URL, "dry_run") as ledger:
        ledger.record(line(9, "I", "valid", row=10))
    with command(out, URL, "undo") as ledger:
        ledger.intend(Entry(7, "", WRITING, "undo", at="t"))
        ledger.record(line(7, "", "success", "undo", settles=True))


def test_the_state_kept_line_by_line_is_the_state_made_from_the_whole_log(
    tmp_path: Path,
) -> None:
    out = tmp_path / "job"
    story(out)
    kept = state(out / FILENAME)
    assert kept == made_again(out, tmp_path)
    assert {str(k): v for k, v in kept[2]} == {
        "fixed": 1,
        "not_found": 1,
        "failed": 1,
        "replaced": 1,
        "success": 2,
        "undone": 1,
        "valid": 1,
        "writing": 1,
    }


def test_many_lines_at_once_make_the_same_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = tmp_path / "many"
    monkeypatch.setattr(ledger_module, "BULK", 1)  # every record_many set-wise
    with command(many, URL, "run") as ledger:
        ledger.record_many([line(1, "A", row=2), line(3, "C", "failed", "", row=4)], 1)
        ledger.record_many([line(3, "X", row=4), line(1, "B", "success", "relatch")], 1)
    assert state(many / FILENAME) == made_again(many, tmp_path)
    pairs = {(f, g): s for f, g, s, *_ in state(many / FILENAME)[4]}
    assert pairs == {
        (1, "A"): "replaced",
        (1, "B"): "success",
        (3, "C"): "fixed",
        (3, "X"): "success",
    }


def test_a_format_2_job_gets_its_state_when_opened(tmp_path: Path) -> None:
    out = tmp_path / "job"
    story(out)
    kept = state(out / FILENAME)
    db = sqlite3.connect(out / FILENAME, isolation_level=None)
    db.executescript(  # as format 2 left it: no state, the row index over every line
        "BEGIN;"
        + "".join(f"DROP TRIGGER {name};" for name in TRIGGERS)
        + "DROP TABLE pair_state; DROP TABLE customer_state; DROP TABLE pair_counts;"
        "DROP TABLE customer_counts; DROP INDEX log_row; CREATE INDEX log_row ON log(row, seq);"
        "PRAGMA user_version=2; COMMIT;"
    )
    db.close()
    Ledger.open(out, create=False).close()
    assert state(out / FILENAME) == kept
    index = select_one(out, "SELECT sql FROM sqlite_master WHERE name = 'log_row'")
    assert "WHERE status != 'writing'" in str(index)
    assert select_one(out, "PRAGMA user_version") == FORMAT


def select_one(out: Path, sql: str) -> object:
    db = sqlite3.connect(out / FILENAME)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()
