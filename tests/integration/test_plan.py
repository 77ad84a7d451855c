"""v2 ``plan``: the reads of a run without its writes; what a run would change."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    read_requests,
    write_csv,
)

SAME, OTHER, NEW, NEW2, MISSING = 1_000_001, 1_000_002, 1_000_003, 1_000_004, 55
PRESET = {SAME: "GT-SAME", OTHER: "GT-OLD"}


def test_plan_reads_every_row_writes_nothing_and_counts_the_changes(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli
) -> None:
    sandbox = sandbox_factory(preset=PRESET)
    rows = [
        (SAME, "GT-SAME"),
        (OTHER, "GT-WANTED"),
        (NEW, "GT-NEW"),
        (NEW2, "GT-NEW2"),
        (MISSING, "GT-X"),
        ("oops", "GT-Y"),
    ]
    source = write_csv(tmp_path / "in.csv", rows)

    plan = plan_cli(source, sandbox.base_url, *FAST)

    assert plan.returncode == 1, plan.stderr  # a not_found and an invalid row
    assert all(r.method == "GET" for r in sandbox.requests_log())
    # One list request for the five valid rows, then the one it left out read alone (404).
    assert len(read_requests(sandbox)) == 2
    assert sandbox.geotab_id_of(NEW) is None and sandbox.geotab_id_of(OTHER) == "GT-OLD"
    by_row = plan.by_row()
    got = {row: (r["status"], r["change"]) for row, r in by_row.items()}
    assert got == {
        2: ("valid", "unchanged"),
        3: ("valid", "relatch"),
        4: ("valid", "new"),
        5: ("valid", "new"),
        6: ("not_found", ""),
        7: ("invalid", ""),
    }
    # v4: the plan is the approval; its words say what run --plan does (issue 26).
    assert by_row[3]["message"] == (
        "the customer holds geotabId 'GT-OLD'; run --plan will replace it "
        "(a run without --plan refuses it unless --allow-relatch)"
    )
    assert by_row[4]["message"] == "the customer holds no geotabId; run --plan will latch it"
    assert by_row[2]["message"] == "already holds this geotabId; nothing to write"
    assert (
        "run --plan will latch 2 new, will replace 1 geotabId (relatch), writes nothing to "
        "1 unchanged; 1 not found (nothing written)\n"
        "  a run without --plan refuses the 1 relatch unless --allow-relatch\n" in plan.stdout
    )
    assert "would refuse" not in plan.stdout + plan.by_row()[3]["message"]
    summary = plan.summary()
    assert summary["kind"] == "plan"
    assert (summary["reads"], summary["writes"], summary["requests"]) == (2, 0, 2)
    assert summary["changes"]["new"] == 2
    (folder,) = plan.run_folders()
    assert folder.name.endswith("-plan")
    assert (folder / "results.csv").is_file()
    # v4: the review sheet names what the plan ran against and says what run --plan does.
    book = openpyxl.load_workbook(folder / "results.xlsx")
    facts = {r[0]: r[1] for r in book["Summary"].iter_rows(min_row=3, max_row=7, values_only=True)}
    assert facts == {
        "base URL": sandbox.base_url,
        "user": f"{summary['user']} on {summary['host']}",
        "input": str(source),
        "input SHA-256": summary["input_sha256"],
        "run folder": f"{folder.name} (give it to run --plan, or latest)",
    }
    assert len(summary["input_sha256"]) == 64
    results = book["Results"]
    assert results["I3"].value == "relatch" and results["I3"].fill.fgColor.rgb == "FFF4511E"
    assert results["G3"].value == by_row[3]["message"]


@pytest.mark.slow
def test_a_clean_plan_exits_0_and_a_run_after_it_still_sends(
    tmp_path: Path, sandbox_factory: SandboxFactory, plan_cli: RunCli, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(preset={SAME: "GT-SAME"})
    source = write_csv(tmp_path / "in.csv", [(SAME, "GT-SAME"), (NEW, "GT-NEW")])

    plan = plan_cli(source, sandbox.base_url, *FAST)

    assert plan.returncode == 0, plan.stderr
    assert (
        "run --plan will latch 1 new, will replace 0 geotabIds (relatch), writes nothing to "
        "1 unchanged; 0 not found (nothing written)\n" in plan.stdout
    )
    assert "refuses" not in plan.stdout  # no relatch: no word about --allow-relatch
    assert [(r.method, r.is_list) for r in sandbox.requests_log()] == [("GET", True)]

    # A plan records nothing: the run after it reads and writes as if no plan had been.
    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 0, run.stderr
    assert (run.summary()["reads"], run.summary()["writes"]) == (1, 1)  # one list read of both
    assert sandbox.geotab_id_of(NEW) == "GT-NEW"

    # A plan after the run: rows latched earlier would not be sent; nothing read for them.
    again = plan_cli(source, sandbox.base_url, *FAST)

    assert again.returncode == 0, again.stderr
    assert again.by_row()[3]["status"] == "valid"
    assert again.by_row()[3]["change"] == "unchanged"
    assert len(read_requests(sandbox, NEW)) == 2  # the first plan's and the run's
