"""Undo's reports for a reviewer (issue #26): each customer's row carries the sheet's own
columns of the latch it puts back, in sheet-row order, and ``undo --dry-run`` says what the
undo will cost before anything is sent."""

from __future__ import annotations

from pathlib import Path

from batch_latch.sandbox import Sandbox
from tests.integration.conftest import FAST, RunCli, SandboxFactory, UndoCli, write_csv

ROWS = [  # the sheet's order is not the fusebillIds' order
    (1_000_009, "GT-9", "Zeta Fleet"),
    (1_000_003, "GT-3", "Acme Haulage"),
    (1_000_006, "GT-6", "Mid Transit"),
]


def _latched(tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli) -> Sandbox:
    """The sandbox after a run latched ROWS (with their Account Name column)."""
    sandbox = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", ROWS, header=("fusebillId", "geotabId", "Account Name"))
    assert run_cli(source, sandbox.base_url, *FAST).returncode == 0
    return sandbox


def test_undo_dry_run_lists_the_sheets_accounts_in_sheet_order_with_its_cost(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    sandbox = _latched(tmp_path, sandbox_factory, run_cli)
    before = len(sandbox.requests_log())

    listing = undo_cli(sandbox.base_url, "--dry-run", "--read-batch", "100", *FAST)

    assert listing.returncode == 0, listing.stderr
    assert len(sandbox.requests_log()) == before  # a dry run sends nothing
    rows = listing.results()
    assert [r["row"] for r in rows] == ["2", "3", "4"]
    assert [r["fusebillId"] for r in rows] == ["1000009", "1000003", "1000006"]
    assert [r["Account Name"] for r in rows] == ["Zeta Fleet", "Acme Haulage", "Mid Transit"]
    # 3 customers: one list read and up to 3 writes
    assert "Undo would look at 3 customers: up to 4 requests" in listing.stderr


def test_undo_reports_keep_the_sheet_columns_of_what_they_put_back(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, undo_cli: UndoCli
) -> None:
    sandbox = _latched(tmp_path, sandbox_factory, run_cli)

    undo = undo_cli(sandbox.base_url, *FAST)

    assert undo.returncode == 0, undo.stderr
    rows = undo.results()
    assert [(r["row"], r["Account Name"], r["status"]) for r in rows] == [
        ("2", "Zeta Fleet", "success"),
        ("3", "Acme Haulage", "success"),
        ("4", "Mid Transit", "success"),
    ]
    assert all(sandbox.geotab_id_of(fid) is None for fid, _, _ in ROWS)
