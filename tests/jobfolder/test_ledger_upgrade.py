"""A job.db written by an earlier build of the same format gets today's views when it is
opened: the views are the rules for pair statuses, and a fix to them must reach old jobs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from batch_latch.jobfolder.ledger import Ledger


def test_an_old_view_is_replaced_by_todays_when_the_job_is_opened(tmp_path: Path) -> None:
    Ledger.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "job.db")
    db.execute("DROP VIEW pairs")
    db.execute("CREATE VIEW pairs AS SELECT 'stale' AS status")
    db.commit()
    db.close()

    ledger = Ledger.open(tmp_path)
    try:
        assert ledger.query("SELECT * FROM pairs") == []  # today's view: no pairs yet
        names = {row[0] for row in ledger.query("SELECT name FROM sqlite_master WHERE type='view'")}
    finally:
        ledger.close()
    assert {"runs", "events", "pairs", "customers"} <= names
