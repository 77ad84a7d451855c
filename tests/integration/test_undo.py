"""v2 ``undo OUT``: put back what the job's latches replaced, never touching a customer changed
since, resumable, and known to the runs after it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    UndoCli,
    killed_when,
    known_rows,
    latch_requests,
    read_requests,
    unlatch_requests,
    write_csv,
)

NEW, RELATCH, HAND, SAME = 1_000_001, 1_000_002, 1_000_003, 1_000_004
PRESET = {RELATCH: "GT-OLD", SAME: "GT-SAME"}
ROWS = [(NEW, "GT-NEW"), (RELATCH, "GT-WANTED"), (HAND, "GT-HAND"), (SAME, "GT-SAME")]


@pytest.mark.slow
def test_undo_restores_leaves_changed_since_alone_and_a_later_run_knows_it(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    undo_cli: UndoCli,
) -> None:
    sandbox = sandbox_factory(preset=PRESET)
    source = write_csv(tmp_path / "in.csv", ROWS)
    run = run_cli(source, sandbox.base_url, "--allow-relatch", *FAST)
    assert run.returncode == 0, run.stderr
    sandbox.set_geotab_id(HAND, "SOMEONE-ELSE")  # changed by hand since the run
    before = len(sandbox.requests_log())

    undo = undo_cli(sandbox.base_url, *FAST)

    assert undo.returncode == 1, undo.stderr  # one customer left alone
    rows = undo.by_fid()
    assert set(rows) == {NEW, RELATCH, HAND}  # SAME was never written by the job
    assert (rows[NEW]["status"], rows[NEW]["change"]) == ("success", "undo")
    assert (rows[RELATCH]["status"], rows[RELATCH]["change"]) == ("success", "undo")
    assert "GT-OLD" in rows[RELATCH]["message"]
    assert (rows[HAND]["status"], rows[HAND]["error_key"]) == ("failed", "changed_since")
    assert "SOMEONE-ELSE" in rows[HAND]["message"]
    assert sandbox.geotab_id_of(NEW) is None
    assert sandbox.geotab_id_of(RELATCH) == "GT-OLD"
    assert sandbox.geotab_id_of(HAND) == "SOMEONE-ELSE"
    assert sandbox.geotab_id_of(SAME) == "GT-SAME"
    sent = sandbox.requests_log()[before:]
    writes = [
        (r.path.rsplit("/", 1)[-1].lower(), r.fusebill_id, r.geotab_id)
        for r in sent
        if r.method != "GET"
    ]
    assert sorted(writes, key=str) == sorted(
        [("unlatchcustomer", NEW, None), ("latchcustomer", RELATCH, "GT-OLD")], key=str
    )
    summary = undo.summary()
    assert summary["kind"] == "undo"
    assert (summary["reads"], summary["writes"]) == (1, 2)  # one list read of the three
    assert undo.folder().name.endswith("-undo")

    # A second undo has nothing left to put back: it does not unlatch twice.
    again = undo_cli(sandbox.base_url, *FAST)
    assert len(unlatch_requests(sandbox, NEW)) == 1
    assert len(latch_requests(sandbox, RELATCH)) == 2  # the run's, and undo's latch back
    assert again.returncode in (0, 1), again.stderr

    # The run after the undo knows it: NEW is a new row again, not "latched earlier".
    rerun = run_cli(source, sandbox.base_url, *FAST)

    new = rerun.by_fid()[NEW]
    assert (new["status"], new["change"], new["attempts"]) == ("success", "new", "1")
    assert "earlier" not in new["message"]
    assert sandbox.geotab_id_of(NEW) == "GT-NEW"
    refused = rerun.by_fid()[RELATCH]  # holds GT-OLD again: a relatch, refused by default
    assert (refused["status"], refused["error_key"]) == ("failed", "relatch_refused")


@pytest.mark.slow
def test_no_read_latches_are_left_alone_unless_unlatch_unknown(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    sandbox = sandbox_factory()
    rows = known_rows(2)
    source = write_csv(tmp_path / "in.csv", rows)
    assert run_cli(source, sandbox.base_url, "--no-read", *FAST).returncode == 0
    before = len(sandbox.requests_log())

    undo = undo_cli(sandbox.base_url, *FAST)

    assert undo.returncode == 1, undo.stderr
    for row in undo.results():
        assert (row["status"], row["error_key"]) == ("failed", "unknown_previous")
        assert "--unlatch-unknown" in row["message"]
    assert unlatch_requests(sandbox) == []
    assert len(sandbox.requests_log()) == before
    assert [sandbox.geotab_id_of(fid) for fid, _ in rows] == ["G00000", "G00001"]

    forced = undo_cli(sandbox.base_url, "--unlatch-unknown", *FAST)

    assert forced.returncode == 0, forced.stderr
    assert {r["status"] for r in forced.results()} == {"success"}
    assert [sandbox.geotab_id_of(fid) for fid, _ in rows] == [None, None]
    assert Counter(r.fusebill_id for r in unlatch_requests(sandbox)) == {fid: 1 for fid, _ in rows}


def test_undo_dry_run_sends_nothing_and_needs_no_key(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    sandbox = sandbox_factory(preset=PRESET)
    source = write_csv(tmp_path / "in.csv", ROWS)
    run_cli(source, sandbox.base_url, "--allow-relatch", *FAST)
    before = len(sandbox.requests_log())

    dry = undo_cli(sandbox.base_url, "--dry-run", key=None)

    assert dry.returncode == 0, dry.stderr
    assert len(sandbox.requests_log()) == before
    rows = dry.by_fid()
    assert set(rows) == {NEW, RELATCH, HAND}
    assert {r["status"] for r in rows.values()} == {"valid"}
    assert "GT-OLD" in rows[RELATCH]["message"]
    assert "unlatch" in rows[NEW]["message"]
    assert sandbox.geotab_id_of(NEW) == "GT-NEW"
    assert dry.summary()["requests"] == 0
    assert dry.folder().name.endswith("-undo")


def test_undo_with_nothing_to_undo_says_so_and_exits_0(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    sandbox = sandbox_factory(preset={SAME: "GT-SAME"})
    source = write_csv(tmp_path / "in.csv", [(SAME, "GT-SAME"), (55, "GT-NOBODY")])
    assert run_cli(source, sandbox.base_url, *FAST).returncode == 1  # unchanged + not_found
    before = len(sandbox.requests_log())

    undo = undo_cli(sandbox.base_url, *FAST)

    assert undo.returncode == 0, undo.stderr
    assert "nothing to undo" in (undo.stderr + undo.stdout).lower()
    assert len(sandbox.requests_log()) == before


@pytest.mark.parametrize("exists", [True, False])
def test_undo_of_a_folder_that_is_not_a_job_is_one_line_and_exit_2(
    tmp_path: Path, undo_cli: UndoCli, exists: bool
) -> None:
    folder = tmp_path / "Documents"
    if exists:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine\n")

    undo = undo_cli("http://127.0.0.1:9/v1", out=folder)

    assert undo.returncode == 2
    lines = undo.stderr.strip().splitlines()
    assert len(lines) == 1, undo.stderr
    assert str(folder) in lines[0] and "not a batch-latch job" in lines[0]
    assert "Traceback" not in undo.stderr


@pytest.mark.slow
def test_undo_killed_midway_is_finished_by_the_next_undo_without_unlatching_twice(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    # 30 rows at 60 ms and 2 workers: the kill after 3 unlatches has ~0.8 s of margin before
    # the undo would finish on its own (with 16 rows ~0.4 s: thin for a loaded machine).
    sandbox = sandbox_factory(latency_ms=60)
    rows = known_rows(30)
    fids = [fid for fid, _ in rows]
    source = write_csv(tmp_path / "in.csv", rows)
    assert run_cli(source, sandbox.base_url, "--rate", "200", "--workers", "8").returncode == 0
    out = tmp_path / "out"

    killed_when(
        ["undo", out, "--no-progress", "--rate", 200, "--workers", 2],
        cwd=tmp_path,
        base_url=sandbox.base_url,
        when=lambda: len(unlatch_requests(sandbox)) >= 3,
        what="the first unlatches",
    )
    done_before = len(unlatch_requests(sandbox))
    assert done_before < len(fids), "the undo finished before it was killed"

    again = undo_cli(sandbox.base_url, "--rate", "200", "--workers", "4")

    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in again.results()} == {"success"}
    assert all(sandbox.geotab_id_of(fid) is None for fid in fids)
    per_customer = Counter(r.fusebill_id for r in unlatch_requests(sandbox))
    assert per_customer == {fid: 1 for fid in fids}, per_customer
    assert len(read_requests(sandbox)) <= 2 * len(fids) + len(fids)


def test_undo_of_a_folder_that_is_not_a_job_leaves_no_trace(
    tmp_path: Path, undo_cli: UndoCli
) -> None:
    mistyped = tmp_path / "out-typo"
    mine = tmp_path / "Documents"
    mine.mkdir()

    assert undo_cli("http://127.0.0.1:9/v1", out=mistyped).returncode == 2
    assert undo_cli("http://127.0.0.1:9/v1", out=mine).returncode == 2

    assert not mistyped.exists()
    assert list(mine.iterdir()) == []


def test_an_undo_that_left_customers_alone_does_not_unsettle_their_latches(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    """ "a pair that succeeded before is not sent again ... while it is still the latest latch
    this job made for that customer": an undo that restored nothing is not a latch."""
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(2))
    assert run_cli(source, sandbox.base_url, "--no-read", *FAST).returncode == 0
    undo = undo_cli(sandbox.base_url, *FAST)
    assert {r["error_key"] for r in undo.results()} == {"unknown_previous"}
    before = len(sandbox.requests_log())

    rerun = run_cli(source, sandbox.base_url, *FAST)

    assert rerun.returncode == 0, rerun.stderr
    assert len(sandbox.requests_log()) == before  # nothing sent again
    assert {(r["status"], r["error_key"]) for r in rerun.results()} == {
        ("success", "latched_earlier")
    }
