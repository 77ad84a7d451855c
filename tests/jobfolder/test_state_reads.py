"""The re-run rules and undo's targets read from the kept state (``KeptState``) say what the
rules over every line (``Earlier``, as the commands read them before) say, on jobs written
the way commands write them: latches and their intents, lost answers, refusals, withdrawn
intents, reads, undos that restore or leave alone, plans, ``--fresh`` starts."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_latch.jobfolder.ledger import FILENAME, WRITING, Entry, Ledger
from batch_latch.jobfolder.ledger_views import TRIGGERS
from batch_latch.jobfolder.rerun_rules import Earlier, Targets
from batch_latch.jobfolder.state_reads import KeptState
from batch_latch.outcome import Settled
from tests.ledgers import command

URL = "http://127.0.0.1:9/v1"
FIDS = (1, 2, 3, 4)
GIDS = ("A", "B", "C")
AT = "2026-01-01T00:00:00Z"

# One task of a command on one customer, as the engine records it.
Op = tuple[str, int, str, str]  # (what, fusebillId, geotabId, previous)


def _entry(
    fid: int,
    gid: str,
    status: str,
    change: str,
    previous: str,
    *,
    error_key: str = "",
    http_status: int | None = None,
    message: str = "",
    settles: bool = False,
) -> Entry:
    row = None if fid == 4 else 10 + fid
    return Entry(
        fid, gid, status, change, previous, error_key, http_status, message, AT, row, settles
    )


def play(ledger: Ledger, kind: str, ops: list[Op]) -> None:
    """Each op as the journal and the engine would record it (on sheet row 10 + fid, or on
    no row when fid is 4: a line taken in from a v3 job)."""
    for what, fid, gid, previous in ops:
        change = {"": "new", "?": "unknown"}.get(previous, "relatch")
        before = "" if previous == "?" else previous
        if kind == "plan":
            ledger.record(_entry(fid, gid, "valid", change, before, message="planned"))
        elif kind == "undo" and what in ("latch", "lost", "refused", "withdrawn"):
            seq = ledger.intend(_entry(fid, "", WRITING, "undo", before))
            if what == "withdrawn":
                ledger.withdraw(seq)
            elif what == "latch":
                ledger.record(_entry(fid, before, "success", "undo", before, settles=True))
            elif what == "refused":
                ledger.record(
                    _entry(fid, gid, "failed", "undo", before, error_key="http_400", settles=True)
                )
        elif kind == "undo":
            ledger.record(
                _entry(fid, gid, "failed", "undo", before, error_key="changed_since", settles=True)
            )
        elif what in ("latch", "lost", "refused", "withdrawn"):
            seq = ledger.intend(_entry(fid, gid, WRITING, change, before))
            if what == "withdrawn":
                ledger.withdraw(seq)
            elif what == "latch":
                ledger.record(
                    _entry(fid, gid, "success", change, before, http_status=200, settles=True)
                )
            elif what == "refused":
                ledger.record(
                    _entry(
                        fid,
                        gid,
                        "failed",
                        "",
                        before,
                        error_key="http_400",
                        http_status=400,
                        message="not eligible",
                        settles=True,
                    )
                )
            else:  # the answer lost: the row fails, the write stays open
                ledger.record(
                    _entry(fid, gid, "failed", "", before, error_key="timeout", message="lost")
                )
        elif what == "not_found":
            ledger.record(
                _entry(
                    fid,
                    gid,
                    "not_found",
                    "",
                    "",
                    error_key="not_found",
                    http_status=404,
                    message="not found",
                    settles=True,
                )
            )
        elif what == "held":
            ledger.record(
                _entry(fid, gid, "success", "unchanged", before, http_status=200, settles=True)
            )
        elif what == "landed":
            ledger.record(
                _entry(fid, gid, "success", change, before, message="landed", settles=True)
            )
        else:  # a refused relatch after a read
            ledger.record(
                _entry(fid, gid, "failed", "", "OLD", error_key="relatch_refused", settles=True)
            )


ops = st.tuples(
    st.sampled_from(
        ["latch", "lost", "refused", "withdrawn", "not_found", "held", "landed", "read"]
    ),
    st.sampled_from(FIDS),
    st.sampled_from(GIDS),
    st.sampled_from(["", "OLD", "?"]),
)
commands = st.lists(
    st.tuples(st.sampled_from(["run", "run", "undo", "plan", "fresh"]), st.lists(ops, max_size=6)),
    max_size=6,
)


def settled_view(s: Settled) -> tuple[object, ...]:
    return (
        s.where.tolist(),
        *(a.to_pylist() for a in (s.status, s.http_status, s.message, s.error_key, s.change)),
        s.previous.to_pylist(),
        s.finished_at.to_pylist(),
        s.notes,
    )


def listed(t: Targets) -> list[tuple[int, str, str, bool]]:
    return [
        (int(f), str(g), str(p), bool(k))
        for f, g, p, k in zip(t.fusebill_ids, t.set_to.to_pylist(), t.previous.to_pylist(), t.known)
    ]


def latch_lines(path: Path, keys: list[tuple[int, str]]) -> list[tuple[int | None, str]]:
    """Undo's sheet row and run folder of each target, from every line: the line of what
    the customer holds when a run wrote it on a row and no write of it is open; else, as
    undo found them before, the latest latch line by a run of what undo puts back."""
    db = sqlite3.connect(path)
    try:
        latest = {
            (f, g): (r, run)
            for f, g, r, run in db.execute(
                "SELECT l.fusebill_id, l.geotab_id, l.row, c.run_id FROM log l "
                "JOIN commands c ON c.id = l.command WHERE l.row IS NOT NULL "
                "AND l.change IN ('new', 'relatch', 'unknown') AND c.kind = 'run' "
                "AND l.status IN ('success', 'writing') ORDER BY l.seq"
            )
        }
        holds = {
            f: (g, r, run, kind)
            for f, g, r, run, kind in db.execute(
                "SELECT l.fusebill_id, l.geotab_id, l.row, c.run_id, c.kind FROM log l "
                "JOIN commands c ON c.id = l.command WHERE c.kind IN ('run', 'undo') "
                "AND l.status = 'success' AND l.change IN ('new', 'relatch', 'unknown', 'undo') "
                "ORDER BY l.seq"
            )
        }
        open_ = {f for (f,) in db.execute("SELECT fusebill_id FROM open_writes")}
    finally:
        db.close()
    each = []
    for f, g in keys:
        held, row, run, kind = holds.get(f, ("", None, "", ""))
        landed = f not in open_ and held == g and kind == "run" and row is not None
        each.append((row, run) if landed else latest.get((f, g), (None, "")))
    return each


def compare(out: Path) -> None:
    ledger = Ledger.open(out)
    try:
        records, start = ledger.records(URL)
        whole, since = Earlier(records), Earlier(records.since(start))
        kept = KeptState(ledger, URL)
        asked = [(f, g) for f in FIDS for g in (*GIDS, "OLD", "")]
        fids = np.array([f for f, _ in asked], dtype=np.int64)
        gids = pa.array([g for _, g in asked], pa.string())
        for retry_not_found in (False, True):
            for retry_failed in (False, True):
                flags = {"retry_not_found": retry_not_found, "retry_failed": retry_failed}
                assert settled_view(kept.settled(fids, gids, **flags)) == settled_view(
                    since.settled(fids, gids, **flags)
                )
        assert kept.origins(FIDS) == whole.origins(FIDS)
        assert kept.unanswered(FIDS) == whole.unanswered(FIDS)
        found = kept.undo_targets()
        assert listed(found) == listed(whole.undo_targets())
        rows, runs = kept.latch_rows(found)
        keys = list(zip(found.fusebill_ids.tolist(), found.set_to.to_pylist()))
        assert list(zip(rows.to_pylist(), runs)) == latch_lines(out / FILENAME, keys)
    finally:
        ledger.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands)
def test_the_kept_state_answers_as_the_rules_over_every_line(
    story: list[tuple[str, list[Op]]],
) -> None:
    wrote: set[int] = set()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "job"
        for kind, what in story:
            real = "run" if kind == "fresh" else kind
            if real == "undo":  # undo writes only to customers the job wrote to
                what = [op for op in what if op[1] in wrote]
            elif real == "run":
                wrote |= {fid for w, fid, _, _ in what if w in ("latch", "lost", "landed")}
            with command(out, URL, real, fresh=kind == "fresh") as ledger:
                play(ledger, real, what)
        compare(out)


def test_a_job_with_lines_of_another_api_is_read_line_by_line(tmp_path: Path) -> None:
    out = tmp_path / "job"
    with command(out, "http://127.0.0.1:8765") as ledger:  # a wrong URL: a write left open
        ledger.intend(_entry(1, "A", WRITING, "new", ""))
    with command(out, URL) as ledger:
        play(ledger, "run", [("latch", 2, "B", "")])
    ledger = Ledger.open(out, create=False)
    try:
        kept = KeptState(ledger, URL)
        # The state says customer 1 is unknown (a write to another API); this API's rules
        # never saw it, as before.
        assert kept.unanswered([1, 2]) == {}
        assert listed(kept.undo_targets()) == [(2, "B", "", True)]
    finally:
        ledger.close()
    compare(out)


def test_a_format_3_job_gets_blind_when_opened(tmp_path: Path) -> None:
    out = tmp_path / "job"
    with command(out, URL) as ledger:
        play(
            ledger, "run", [("latch", 1, "A", "?"), ("latch", 2, "B", "OLD"), ("lost", 3, "C", "?")]
        )
    path = out / FILENAME
    db = sqlite3.connect(path, isolation_level=None)
    kept = sorted(db.execute("SELECT * FROM customer_state"))
    db.executescript(  # as format 3 left it: no blind column
        "BEGIN;"
        + "".join(f"DROP TRIGGER {name};" for name in TRIGGERS)
        + "CREATE TABLE c3 AS SELECT fusebill_id, before, holds_seq, state FROM customer_state;"
        "DROP TABLE customer_state; CREATE TABLE customer_state (fusebill_id INTEGER PRIMARY "
        "KEY, before TEXT, holds_seq INTEGER, state NOT NULL);"
        "INSERT INTO customer_state SELECT * FROM c3; DROP TABLE c3;"
        "PRAGMA user_version=3; COMMIT;"
    )
    db.close()
    Ledger.open(out, create=False).close()
    db = sqlite3.connect(path)
    try:
        assert sorted(db.execute("SELECT * FROM customer_state")) == kept
        blind = sorted(db.execute("SELECT fusebill_id, blind FROM customer_state"))
        assert blind == [(1, 1), (2, None), (3, 1)]  # 3: its open write was written blind
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    finally:
        db.close()


def test_a_latch_sent_again_and_refused_keeps_the_row_of_the_latch_that_landed(
    tmp_path: Path,
) -> None:
    out = tmp_path / "job"
    with command(out, URL) as ledger:
        play(ledger, "run", [("latch", 1, "A", "")])
    with command(out, URL, fresh=True) as ledger:  # sent again blind, and refused
        play(ledger, "run", [("refused", 1, "A", "")])
    ledger = Ledger.open(out, create=False)
    try:
        kept = KeptState(ledger, URL)
        rows, runs = kept.latch_rows(kept.undo_targets())
        # Undo puts back the latch of the first run: its row and run folder (the run that
        # sent the pair again only tried; undo read them from that try before format 4).
        assert (rows.to_pylist(), runs) == ([11], ["test-1-run"])
    finally:
        ledger.close()


def test_texts_that_hold_the_readers_separator_are_read_whole(tmp_path: Path) -> None:
    """Undo's targets are read as one text a column, the values separated by ASCII's unit
    separator; a value that holds it (what Fusebill said a customer held) is read whole."""
    out = tmp_path / "job"
    with command(out, URL) as ledger:
        play(
            ledger,
            "run",
            [("latch", 1, "A", "O\x1fLD"), ("latch", 2, "B", ""), ("latch", 3, "C\x1f", "OLD")],
        )
    ledger = Ledger.open(out, create=False)
    try:
        assert listed(KeptState(ledger, URL).undo_targets()) == [
            (1, "A", "O\x1fLD", True),
            (2, "B", "", True),
            (3, "C\x1f", "OLD", True),
        ]
    finally:
        ledger.close()
    compare(out)
