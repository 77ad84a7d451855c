"""``status OUT --customer ID`` against a job built through the CLI and the sandbox: plan,
run, re-run, a re-latch and undo; a write the checkpoint recorded before it was sent whose
answer never came; a checkpoint set aside by ``--fresh``.

Contract v3: "Commands" (``status --customer``), "Reports and history", "Resume".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from batch_latch.jobfolder.checkpoint import WRITING, Record
from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    StatusCli,
    UndoCli,
    known_rows,
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
    folders = sorted(p.name for p in (out / "runs").iterdir())
    assert [e["run"] for e in events] == folders  # one event per command, each its folder
    assert [e["kind"] for e in events] == ["plan", "run", "run", "run", "undo"]
    assert [(e["status"], e["change"], e["geotabId"]) for e in events] == [
        ("valid", "new", "G00000"),
        ("success", "new", "G00000"),
        ("success", "new", "G00000"),
        ("success", "relatch", "NEW-1"),
        ("success", "undo", "NEW-1"),
    ]
    assert "earlier" in events[2]["message"]  # the re-run did not send it again
    assert events[3]["message"] == "latched; replaced 'G00000'"
    assert "unlatched" in events[4]["message"]
    assert {e["user"] for e in events} == {json.loads((out / "summary.json").read_text())["user"]}

    text = status_cli(out, "--customer", FID)
    assert text.returncode == 0, text.stderr
    assert (
        text.stdout.splitlines()[0] == f"Customer {FID} in the job in {out}: 5 events, oldest first"
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
        assert done.stderr.count("\n") == 1 and "never saw customer 77" in done.stderr
    done = status_cli(tmp_path / "nothing-here", "--customer", FID)
    assert done.returncode == 2 and "not a batch-latch job folder" in done.stderr


def test_an_unanswered_write_and_a_set_aside_checkpoint_belong_to_the_story(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, status_cli: StatusCli
) -> None:
    sandbox = sandbox_factory()
    out = tmp_path / "out"
    sheet = write_csv(tmp_path / "in.csv", [(FID, "FIRST")])
    assert run_cli(sheet, sandbox.base_url, *FAST).returncode == 0
    first = next((out / "runs").iterdir())
    assert run_cli(sheet, sandbox.base_url, *FAST, "--fresh").returncode == 0
    assert len(list(out.glob("checkpoint-*.csv.old"))) == 1
    shutil.rmtree(first)  # only the set-aside checkpoint remembers the first run now
    # A command killed while its write was in flight: the write-ahead record, no answer.
    lost = Record(FID, "LOST-1", WRITING, None, "sent; its answer was not recorded", "",
                  "2099-01-01T00:00:00Z", "relatch", "FIRST")  # fmt: skip
    with (out / "checkpoint.csv").open("ab") as handle:
        handle.write(lost.line())

    events = story(status_cli, out)
    assert [(e["status"], e["geotabId"], e["run"] != "") for e in events] == [
        ("success", "FIRST", False),  # from checkpoint-<time>.csv.old: its folder is gone
        ("success", "FIRST", True),  # the --fresh run (it found the customer holding it)
        ("writing", "LOST-1", False),
    ]
    assert events[0]["change"] == "new" and events[0]["kind"] == "run"
    assert events[2]["previous_geotabId"] == "FIRST" and events[2]["change"] == "relatch"
    text = status_cli(out, "--customer", FID).stdout
    assert "(no run folder: from the checkpoint)" in text and "writing, relatch" in text
