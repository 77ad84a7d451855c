"""Contract sentences checked through the real CLI against the sandbox, found in a review of
the outside contract (v2) line by line."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    UndoCli,
    known_rows,
    write_csv,
)


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
