"""A job taken in whole (``Ledger.taking_in``, how a v3 job comes in) gets the state the
rules make of its whole log: the plain customers' from their columns (``whole_state``), the
others' from the rules, so the two ways must agree for every kind of line."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pyarrow as pa

from batch_latch.jobfolder.ledger import FILENAME, WRITING, Entry, Ledger, as_lines
from batch_latch.jobfolder.whole_state import COLUMNS, plain_state
from tests.jobfolder.test_ledger_state import made_again, state, story
from tests.jobfolder.test_ledger_views import URL

Commands = list[tuple[str, list[Entry]]]


def take_whole(out: Path, commands: Commands) -> Path:
    """A new ledger in ``out`` that takes ``commands`` (kind, lines) in whole."""
    ledger = Ledger.open(out)
    try:
        with ledger.taking_in():
            for n, (kind, lines) in enumerate(commands, 1):
                command = ledger.begin(f"test-{n}-{kind}", kind, started_at="t", base_url=URL)
                ledger.take_lines(command, as_lines(lines))
                ledger.end(command, ended_at="t", exit_code=0)
    finally:
        ledger.close()
    return out


def lines_of(out: Path) -> Commands:
    """A ledger's lines, command by command, as they were written."""
    db = sqlite3.connect(out / FILENAME)
    try:
        commands: Commands = []
        for cid, kind in db.execute("SELECT id, kind FROM commands ORDER BY id"):
            got = db.execute(
                "SELECT fusebill_id, geotab_id, status, change, previous, error_key, "
                "http_status, message, at, row, settles FROM log WHERE command = ? ORDER BY seq",
                (cid,),
            )
            names = [d[0] for d in got.description]
            entries = [Entry(**{**dict(zip(names, r)), "settles": r[10] == 1}) for r in got]
            commands.append((kind, entries))
        return commands
    finally:
        db.close()


def test_the_story_taken_in_whole_reads_as_kept_line_by_line(tmp_path: Path) -> None:
    story(tmp_path / "lines")  # every rule at least once, through the per-line triggers
    whole = take_whole(tmp_path / "whole", lines_of(tmp_path / "lines"))

    kept = state(whole / FILENAME)
    assert kept == made_again(whole, tmp_path)
    # The views read the same (the state's seqs differ: the story's withdrawn intent left a gap).
    assert kept[2:] == state(tmp_path / "lines" / FILENAME)[2:]


def test_random_jobs_taken_in_whole_have_the_state_of_the_rules(tmp_path: Path) -> None:
    """Small jobs of random lines (few customers, sheet rows and geotabIds, so that pairs
    meet: relatches, undos, fixes, open writes, plans after runs) against the rules applied
    to the whole log (``FILL_STATE``)."""
    rng = random.Random(24)
    plain = 0
    for n in range(60):
        commands: Commands = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["run", "run", "plan", "undo", "dry_run"])
            lines = [random_line(rng, kind) for _ in range(rng.randint(0, 12))]
            commands.append((kind, lines))
        out = take_whole(tmp_path / f"job{n}", commands)
        assert state(out / FILENAME) == made_again(out, tmp_path), commands
        plain += len(plain_state(*columns(out)).pairs)
    assert plain > 15  # the columns' way was taken, not only the rules'


def random_line(rng: random.Random, kind: str) -> Entry:
    fid = rng.randint(1, 5)
    if kind == "undo":
        status = rng.choice([WRITING, "success", "success", "failed"])
        return Entry(fid, "", status, "undo", at="t", settles=status != WRITING)
    status = rng.choice([WRITING, WRITING, "success", "success", "failed", "not_found", "valid"])
    change = rng.choice(["new", "relatch", "unknown", "unchanged", ""])  # unknown: blind
    return Entry(
        fid,
        rng.choice("AB"),
        status,
        change,
        previous=rng.choice(["", "OLD"]),
        error_key="http_400" if status == "failed" else "",
        at="t",
        row=rng.choice([None, 2, 3, 4]),
        settles=rng.random() < (0.1 if status == WRITING else 0.8),  # an odd intent settles
    )


def columns(out: Path) -> tuple[pa.Table, list[int]]:
    """The whole log as ``plain_state`` reads it, and the sending commands."""
    ledger = Ledger.open(out)
    try:
        rows = ledger.query(
            "SELECT seq, command, row, fusebill_id, geotab_id, previous, status, change, "
            "error_key, settles = 1 FROM log ORDER BY seq"
        )
        sending = [
            i for (i,) in ledger.query("SELECT id FROM commands WHERE kind IN ('run', 'undo')")
        ]
    finally:
        ledger.close()
    table = pa.table({name: pa.array([r[i] for r in rows]) for i, name in enumerate(COLUMNS)})
    return table, sending
