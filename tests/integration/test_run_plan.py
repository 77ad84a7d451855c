"""v3 ``run INPUT --plan PLAN``: write exactly what a reviewed plan showed, refuse what
changed since, and refuse a plan that is not this sheet's, this job's or this API's."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    StatusCli,
    latch_requests,
    write_csv,
)

NEW, OLD, SAME, MOVED = 1_000_001, 1_000_002, 1_000_003, 1_000_004
PRESET = {OLD: "GT-OLD", SAME: "GT-SAME", MOVED: "GT-M0"}
ROWS = [(NEW, "GT-NEW"), (OLD, "GT-REPLACED"), (SAME, "GT-SAME"), (MOVED, "GT-M1")]


def test_run_plan_writes_the_reviewed_relatch_and_refuses_what_changed_since(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    plan_cli: RunCli,
    run_cli: RunCli,
    status_cli: StatusCli,
) -> None:
    sandbox = sandbox_factory(preset=PRESET)
    source = write_csv(tmp_path / "in.csv", ROWS)
    plan = plan_cli(source, sandbox.base_url, *FAST)
    assert plan.returncode == 0, plan.stderr
    folder = plan.run_folders()[-1]
    assert (folder / "plan.arrow").is_file() and (folder / "results.xlsx").is_file()

    sandbox.set_geotab_id(MOVED, "GT-SOMEONE-ELSE")  # another integration, after the review
    run = run_cli(source, sandbox.base_url, "--plan", "latest", *FAST)

    assert run.returncode == 1, run.stderr
    got = {int(r["fusebillId"]): r for r in run.results()}
    assert (got[NEW]["status"], got[NEW]["change"]) == ("success", "new")
    # The reviewed re-latch needs no --allow-relatch: the plan is the approval.
    assert (got[OLD]["status"], got[OLD]["change"]) == ("success", "relatch")
    assert got[OLD]["previous_geotabId"] == "GT-OLD"
    assert (got[SAME]["status"], got[SAME]["change"]) == ("success", "unchanged")
    stale = got[MOVED]
    assert (stale["status"], stale["error_key"], stale["change"]) == ("failed", "stale_plan", "")
    assert "'GT-M0'" in stale["message"] and "'GT-SOMEONE-ELSE'" in stale["message"]
    assert stale["previous_geotabId"] == "GT-SOMEONE-ELSE"
    assert sandbox.geotab_id_of(MOVED) == "GT-SOMEONE-ELSE"  # nothing written
    assert Counter(r.fusebill_id for r in latch_requests(sandbox)) == {NEW: 1, OLD: 1}
    summary = run.summary()
    assert summary["plan"] == folder.name
    assert summary["changes"].get("relatch") == 1 and summary["requests"] == 3
    # status's runs table says which plan the run applied.
    job = json.loads(status_cli(run.out, "--json").stdout)
    assert [(r["kind"], r["plan"]) for r in job["runs"]] == [
        ("plan", None),
        ("run", folder.name),
    ]
    text = status_cli(run.out).stdout
    assert "run --plan" in text and f"applied plan {folder.name}" in text


def test_allow_relatch_does_not_widen_a_plan(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [(NEW, "GT-NEW")])
    assert plan_cli(source, sandbox.base_url, *FAST).returncode == 0
    sandbox.set_geotab_id(NEW, "GT-LATER")  # a re-latch that appeared after the review
    run = run_cli(source, sandbox.base_url, "--plan", "latest", "--allow-relatch", *FAST)
    (row,) = run.results()
    assert (row["status"], row["error_key"]) == ("failed", "stale_plan")
    assert latch_requests(sandbox) == []


@pytest.mark.parametrize("extra", [["--no-read"], ["--dry-run"]])
def test_plan_with_no_read_or_dry_run_is_refused(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, extra: list[str]
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [(NEW, "GT-NEW")])
    run = run_cli(source, sandbox.base_url, "--plan", "latest", *extra)
    assert run.returncode == 2, run.stderr
    assert extra[0] in run.stderr and run.stderr.count("\n") == 1
    assert sandbox.requests_log() == []


def test_a_sheet_changed_since_the_plan_is_refused(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [(NEW, "GT-NEW")])
    assert plan_cli(source, sandbox.base_url, *FAST).returncode == 0
    seen = len(sandbox.requests_log())
    write_csv(source, [(NEW, "GT-EDITED")])
    run = run_cli(source, sandbox.base_url, "--plan", "latest", *FAST)
    assert run.returncode == 2, run.stderr
    assert "the sheet changed since the plan" in run.stderr
    assert len(sandbox.requests_log()) == seen


def test_a_folder_that_is_not_a_plan_of_this_job_is_refused(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [(NEW, "GT-NEW")])
    none_yet = run_cli(source, sandbox.base_url, "--plan", "latest", *FAST)
    assert none_yet.returncode == 2 and "holds no plan" in none_yet.stderr
    done = run_cli(source, sandbox.base_url, *FAST)
    run_folder = done.run_folders()[-1]
    not_a_plan = run_cli(source, sandbox.base_url, "--plan", str(run_folder), *FAST)
    assert not_a_plan.returncode == 2 and "not a plan" in not_a_plan.stderr
    elsewhere = plan_cli(source, sandbox.base_url, *FAST, out=tmp_path / "other")
    foreign = elsewhere.run_folders()[-1]
    other_job = run_cli(source, sandbox.base_url, "--plan", str(foreign), *FAST)
    assert other_job.returncode == 2 and "not a plan of the job" in other_job.stderr


def test_a_plan_made_against_another_api_is_refused(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli, run_cli: RunCli
) -> None:
    first, second = sandbox_factory(), sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [(NEW, "GT-NEW")])
    assert plan_cli(source, first.base_url, *FAST).returncode == 0
    run = run_cli(source, second.base_url, "--plan", "latest", *FAST)
    assert run.returncode == 2, run.stderr
    assert first.base_url in run.stderr and second.base_url in run.stderr
    assert second.requests_log() == []


def test_a_plan_stopped_before_it_read_every_row_is_refused_naming_how_many(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli, run_cli: RunCli
) -> None:
    # Issue 26: run --plan latest applied a plan interrupted after 8 of 200 rows; the
    # unread rows became stale_plan and still cost requests.
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", [(2_000_000 + i, f"GT-{i}") for i in range(5)])
    plan = plan_cli(source, sandbox.base_url, "--read-batch", "1", "--max-requests", "2")
    assert plan.returncode == 3, plan.stderr
    assert plan.summary()["counts"]["pending"] == 3
    seen = len(sandbox.requests_log())

    run = run_cli(source, sandbox.base_url, "--plan", "latest", *FAST)

    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    folder = plan.run_folders()[-1].name
    assert (
        f"--plan {folder}: the plan did not finish (stopped: max_requests); it did not read "
        "3 of its 5 rows (failed or pending); make a new plan of the sheet and review that"
    ) in run.stderr
    assert len(sandbox.requests_log()) == seen  # nothing sent
    assert latch_requests(sandbox) == []


def test_a_run_without_plan_names_plan_latest_when_the_newest_plan_is_of_this_sheet(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    other = write_csv(tmp_path / "other.csv", [(NEW, "GT-OTHER")])
    source = write_csv(tmp_path / "in.csv", [(NEW, "GT-NEW")])
    out = tmp_path / "job"
    assert plan_cli(other, sandbox.base_url, *FAST, out=out).returncode == 0
    no_hint = run_cli(source, sandbox.base_url, *FAST, "--dry-run", out=out)
    assert "--plan latest" not in no_hint.stderr  # a dry run; and that plan is of another sheet
    plan = plan_cli(source, sandbox.base_url, *FAST, out=out)
    folder = plan.run_folders()[-1].name

    run = run_cli(source, sandbox.base_url, *FAST, out=out)

    assert run.returncode == 0, run.stderr  # the run goes on, by its own rules
    hints = [line for line in run.stderr.splitlines() if "--plan latest" in line]
    assert hints == [
        f"Note: a reviewed plan of this sheet exists ({folder}); `--plan latest` writes "
        "exactly what it showed, this run applies its own rules (a relatch is refused "
        "unless --allow-relatch)."
    ]
    assert sandbox.geotab_id_of(NEW) == "GT-NEW"
    write_csv(source, [(NEW, "GT-NEW"), (OLD, "GT-X")])  # the sheet changed: no hint
    again = run_cli(source, sandbox.base_url, *FAST, out=out)
    assert "--plan latest" not in again.stderr
