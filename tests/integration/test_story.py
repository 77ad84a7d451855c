"""v3 "A job that tells its own story truly" (issue #18): each numbered item through the CLI
against the sandbox."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    latch_requests,
    write_csv,
)

OTHER, NEW = 1_000_002, 1_000_003


def _summary_sheet_changes(path: Path) -> dict[str, int]:
    sheet = openpyxl.load_workbook(path)["Summary"]
    cells = [(r[0], r[1]) for r in sheet.iter_rows(values_only=True) if r and r[0]]
    at = next(i for i, (label, _) in enumerate(cells) if label == "change")
    return {str(k): int(v) for k, v in cells[at + 1 :] if isinstance(v, int | float)}


def test_item6_a_refused_relatch_has_no_change_anywhere(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(preset={OTHER: "GT-OLD"})
    source = write_csv(tmp_path / "in.csv", [(OTHER, "GT-WANTED"), (NEW, "GT-NEW")])

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 1, run.stderr
    refused = run.by_fid()[OTHER]
    assert (refused["status"], refused["error_key"]) == ("failed", "relatch_refused")
    assert refused["change"] == ""  # nothing was replaced
    assert refused["previous_geotabId"] == "GT-OLD"  # what the customer holds
    assert latch_requests(sandbox, OTHER) == []
    changes = {k: v for k, v in run.summary()["changes"].items() if v}
    assert changes == {"new": 1}
    assert {k: v for k, v in _summary_sheet_changes(run.out / "results.xlsx").items() if v} == {
        "new": 1
    }
    line = next(x for x in run.stdout.splitlines() if "changes:" in x)
    assert "relatch" not in line and "1 new" in line
    failed = {int(r["fusebillId"]): r for r in run.failed()}
    assert failed[OTHER]["change"] == ""
