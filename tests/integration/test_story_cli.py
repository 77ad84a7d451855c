"""``status OUT --customer ID`` against a job built through the CLI and the sandbox: plan,
run, re-run, a re-latch and undo; a write the ledger recorded before it was sent whose
answer never came (the command was killed); a job run again with ``--fresh``.

Contract v3: "Commands" (``status --customer``), "Reports and history", "Resume"; v4 "One
ledger" (``--fresh`` forgets for the re-run rules only; the story is the ledger's).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    StatusCli,
    UndoCli,
    job_db,
    killed_when,
    known_rows,
    latch_requests,
    write_csv,
)

FID = 1_000_000
EVENT_KEYS = [
    "at", "kind", "run", "user", "status", "change", "geotabId", "previous_geotabId", "message"
]  # fmt: skip


def story(status_cli: StatusCli, out: Path, fid: int = FID) -> list[dict[str, Any]]:
    done = status_cli(out, "--customer", fid, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["fusebillId"] == fid
    events: list[dict[str, Any]] = data["events"]
    assert all(list(e) == EVENT_KEYS for e in events)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)  # oldest first
    return events


def test_the_story_of_a_customer_through_plan_run_rerun_relatch_and_undo(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    plan_cli: RunCli,
    run_cli: RunCli,
    undo_cli: UndoCli,
    status_cli: StatusCli,
) -> None:
    sandbox = sandbox_factory()
    base = sandbox.base_url
    sheet = write_csv(tmp_path / "in.csv", known_rows(3, start=FID))
    assert plan_cli(sheet, base, *FAST).returncode == 0
    assert run_cli(sheet, base, *FAST).returncode == 0
    assert run_cli(sheet, base, *FAST).returncode == 0  # the re-run: nothing to send
    changed = write_csv(tmp_path / "changed.csv", [(FID, "NEW-1")])
    assert run_cli(changed, base, *FAST, "--allow-relatch").returncode == 0
    assert undo_cli(base, *FAST).returncode == 0
    assert sandbox.geotab_id_of(FID) is None

    out = tmp_path / "out"
    events = story(status_cli, out)
    plan, run, rerun, relatch, undo = sorted(p.name for p in (out / "runs").iterdir())
    # One event per command that read or wrote it, each its folder; the re-run only showed
    # the pair as settled earlier, so it adds none (v4 "One ledger", events).
    assert [e["run"] for e in events] == [plan, run, relatch, undo]
    assert [e["kind"] for e in events] == ["plan", "run", "run", "undo"]
    assert [(e["status"], e["change"], e["geotabId"]) for e in events] == [
        ("valid", "new", "G00000"),
        ("success", "new", "G00000"),
        ("success", "relatch", "NEW-1"),
        ("success", "undo", ""),  # what undo wrote: an unlatch (customers.holds null)
    ]
    assert job_db(out, "SELECT count(*) FROM events WHERE run_id = ?", rerun) == [(0,)]
    assert events[2]["message"] == "latched; replaced 'G00000'"
    assert "unlatched" in events[3]["message"]
    assert {e["user"] for e in events} == {json.loads((out / "summary.json").read_text())["user"]}

    text = status_cli(out, "--customer", FID)
    assert text.returncode == 0, text.stderr
    assert (
        text.stdout.splitlines()[0] == f"Customer {FID} in the job in {out}: 4 events, oldest first"
    )
    for event in events:
        assert (
            f"  {event['at']}  {event['kind']:<7} {event['run']}  by {event['user']}" in text.stdout
        )


def test_a_customer_the_job_never_saw_is_exit_2_in_one_line(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    sheet = write_csv(tmp_path / "in.csv", known_rows(2, start=FID))
    assert run_cli(sheet, sandbox.base_url, *FAST).returncode == 0
    for words in (("--customer", 77), ("--customer", 77, "--json")):
        done = status_cli(tmp_path / "out", *words)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.count("\n") == 1, done.stderr
        assert "customer 77 is not in the job" in done.stderr, done.stderr
    done = status_cli(tmp_path / "nothing-here", "--customer", FID)
    assert done.returncode == 2 and "not a batch-latch job folder" in done.stderr


def test_an_unanswered_write_and_a_fresh_start_belong_to_the_story(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    # Answers about FID drip a byte every 2 ms: a latch's answer (1.3 kB) takes seconds to
    # come, time enough to kill the command between the latch landing and its answer.
    sandbox = sandbox_factory(drip_seconds=0.002, drip_ids=frozenset({FID}))
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", [(FID, "FIRST")])
    assert run_cli(sheet, sandbox.base_url, *FAST).returncode == 0
    first = next((out / "runs").iterdir())
    assert run_cli(sheet, sandbox.base_url, *FAST, "--fresh").returncode == 0
    shutil.rmtree(first)  # the story is the ledger's, not the run folders'
    # A command killed while its write was in flight: the write landed, its answer never
    # came; the ledger holds the write recorded before it was sent.
    changed = write_csv(tmp_path / "changed.csv", [(FID, "LOST-1")])
    words = ["run", changed, "--out", out, "--no-progress", "--allow-relatch", "--timeout", 120]
    killed_when(
        words,
        cwd=tmp_path,
        base_url=sandbox.base_url,
        when=lambda: sandbox.geotab_id_of(FID) == "LOST-1",
        what="the latch",
    )
    assert len(latch_requests(sandbox, FID)) == 2

    events = story(status_cli, out)
    runs = [r for (r,) in job_db(out, "SELECT run_id FROM runs")]
    assert len(runs) == 3 and runs[0] == first.name
    assert [(e["status"], e["geotabId"], e["run"]) for e in events] == [
        ("success", "FIRST", runs[0]),  # its folder is gone: the ledger remembers it
        ("success", "FIRST", runs[1]),  # the --fresh run (it found the customer holding it)
        ("writing", "LOST-1", runs[2]),
    ]
    assert (events[0]["change"], events[0]["kind"]) == ("new", "run")
    assert events[1]["change"] == "unchanged"
    assert events[2]["change"] == "relatch"
    # Possibly landed: undo would read it and put back what it held before the job's first
    # change (nothing).
    assert job_db(out, "SELECT fusebillId, before, state FROM customers") == [
        (FID, None, "unknown")
    ]
    text = status_cli(out, "--customer", FID).stdout
    assert "writing, relatch" in text, text
