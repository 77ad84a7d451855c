"""v2 read before write: each row's customer is read first, and the read decides."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    latch_requests,
    read_requests,
    write_csv,
)

SAME, OTHER, NEW = 1_000_001, 1_000_002, 1_000_003
PRESET = {SAME: "GT-SAME", OTHER: "GT-OLD"}
ROWS = [(SAME, "GT-SAME"), (OTHER, "GT-WANTED"), (NEW, "GT-NEW")]


def test_unchanged_new_and_a_refused_relatch(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(preset=PRESET)
    source = write_csv(tmp_path / "in.csv", ROWS)

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 1, run.stderr
    rows = run.by_fid()
    same = rows[SAME]
    assert (same["status"], same["change"], same["attempts"]) == ("success", "unchanged", "0")
    assert same["http_status"] == "200"  # the read's status: the row was never written
    refused = rows[OTHER]
    assert (refused["status"], refused["error_key"], refused["attempts"]) == (
        "failed",
        "relatch_refused",
        "0",
    )
    assert "GT-OLD" in refused["message"] and "--allow-relatch" in refused["message"]
    new = rows[NEW]
    assert (new["status"], new["change"], new["previous_geotabId"]) == ("success", "new", "")
    # Nothing written to the customers the read settled or refused.
    assert latch_requests(sandbox, SAME) == []
    assert latch_requests(sandbox, OTHER) == []
    assert [(r.fusebill_id, r.geotab_id) for r in latch_requests(sandbox)] == [(NEW, "GT-NEW")]
    assert sandbox.geotab_id_of(OTHER) == "GT-OLD"
    summary = run.summary()
    # One list request read the three customers (v2: three reads).
    assert (summary["requests"], summary["reads"], summary["writes"]) == (2, 1, 1)
    assert summary["changes"]["unchanged"] == 1 and summary["changes"]["new"] == 1
    assert [r["fusebillId"] for r in run.failed()] == [str(OTHER)]


def test_allow_relatch_replaces_and_names_the_old_value(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(preset=PRESET)
    source = write_csv(tmp_path / "in.csv", ROWS)

    run = run_cli(source, sandbox.base_url, "--allow-relatch", *FAST)

    assert run.returncode == 0, run.stderr
    row = run.by_fid()[OTHER]
    assert (row["status"], row["change"], row["previous_geotabId"]) == (
        "success",
        "relatch",
        "GT-OLD",
    )
    assert row["attempts"] == "1"
    assert "GT-OLD" in row["message"]
    assert sandbox.geotab_id_of(OTHER) == "GT-WANTED"
    assert run.by_fid()[SAME]["change"] == "unchanged"
    assert latch_requests(sandbox, SAME) == []
    changes = {k: v for k, v in run.summary()["changes"].items() if v}
    assert changes == {"unchanged": 1, "relatch": 1, "new": 1}


def test_no_read_latches_blind_with_half_the_requests(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(preset=PRESET)
    source = write_csv(tmp_path / "in.csv", ROWS)

    run = run_cli(source, sandbox.base_url, "--no-read", *FAST)

    assert run.returncode == 0, run.stderr
    for row in run.results():
        assert (row["status"], row["change"], row["attempts"]) == ("success", "unknown", "1")
    assert read_requests(sandbox) == []
    assert len(latch_requests(sandbox)) == 3
    summary = run.summary()
    assert (summary["requests"], summary["reads"], summary["writes"]) == (3, 0, 3)
    assert sandbox.geotab_id_of(OTHER) == "GT-WANTED"  # written blind, as asked


def test_an_api_that_hides_geotab_ids_latches_with_change_unknown_and_says_so_once(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(hide_geotab_id=True)
    rows = [(1_000_010 + i, f"H{i}") for i in range(4)]
    source = write_csv(tmp_path / "in.csv", rows)

    run = run_cli(source, sandbox.base_url, *FAST)

    assert run.returncode == 0, run.stderr
    for row in run.results():
        assert (row["status"], row["change"]) == ("success", "unknown")
    for fid, gid in rows:
        assert sandbox.geotab_id_of(fid) == gid
    lines = run.stderr_lines("geotabId")
    said = [line for line in lines if "do not show" in line or "does not show" in line]
    assert len(said) == 1, run.stderr
    assert "unknown" in said[0]
    summary = run.summary()
    # The list shows no geotabId: one list request, then every customer read alone.
    assert (summary["reads"], summary["writes"]) == (5, 4)
