"""v3 "A job that tells its own story truly" (issue #18): each numbered item through the CLI
against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    StatusCli,
    UndoCli,
    holdings,
    known_rows,
    latch_requests,
    summary_counts,
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


def test_item1_a_wrong_url_leaves_the_job_unbound_and_a_real_mismatch_names_both(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", known_rows(3))
    wrong = sandbox.base_url.removesuffix("/v1")

    stopped = run_cli(source, wrong, *FAST)
    assert stopped.returncode == 3, stopped.stderr
    assert "FUSEBILL_BASE_URL" in stopped.stderr

    fixed = run_cli(source, sandbox.base_url, *FAST)  # the same command, the URL fixed
    assert fixed.returncode == 0, fixed.stderr
    assert summary_counts(fixed.summary()) == {"success": 3}

    other = sandbox_factory()
    refused = run_cli(source, other.base_url, *FAST)
    assert refused.returncode == 2
    line = refused.stderr.strip()
    assert sandbox.base_url in line and other.base_url in line, line
    assert "--out" in line and "--fresh" not in line
    assert latch_requests(other) == []


def test_item2_fresh_keeps_the_set_aside_latches_for_undo(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    run_cli: RunCli,
    undo_cli: UndoCli,
    status_cli: StatusCli,
) -> None:
    sandbox = sandbox_factory()
    rows = known_rows(3)
    source = write_csv(tmp_path / "in.csv", rows)
    assert run_cli(source, sandbox.base_url, *FAST).returncode == 0
    more = write_csv(tmp_path / "more.csv", known_rows(2, start=1_000_010))
    fresh = run_cli(more, sandbox.base_url, *FAST, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert list(fresh.out.glob("checkpoint-*.csv.old"))

    dry = undo_cli(sandbox.base_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert len(dry.results()) == 5

    undone = undo_cli(sandbox.base_url, *FAST)
    assert undone.returncode == 0, undone.stderr
    fids = [f for f, _ in rows] + [f for f, _ in known_rows(2, start=1_000_010)]
    assert set(holdings(sandbox, fids).values()) == {None}
    job = json.loads(status_cli(undone.out, "--json").stdout)
    assert job["in_fusebill"] == {"latched": 0, "restored": 5, "unknown": 0}
