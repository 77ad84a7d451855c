"""``batch-latch demo``: the bundled sample through plan, run and re-run against the sandbox."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from batch_latch.commands import demo
from batch_latch.jobfolder.history import RUNS


@pytest.mark.slow
def test_the_demo_runs_plan_run_and_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert demo.run(out) == 0
    text = capsys.readouterr().out
    for title in ("1. plan", "2. run --plan latest", "3. re-run", "4. undo --dry-run"):
        assert f"== {title}" in text
    assert "Sandbox listening on http://127.0.0.1:" in text
    assert f"batch-latch undo {out}" in text
    kinds = sorted(p.name.split("-", 1)[1] for p in (out / RUNS).iterdir())
    assert kinds == ["plan", "run", "run", "undo"]
    summaries = {
        p.name: json.loads((p / "summary.json").read_text(encoding="utf-8"))
        for p in sorted((out / RUNS).iterdir())
    }
    plan, run, rerun, _ = summaries.values()
    # v3: the demo leaves the run's reports in OUT/, not the undo dry run's listing.
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == rerun
    assert (out / "results.csv").read_bytes() == (
        sorted((out / RUNS).iterdir())[2] / "results.csv"
    ).read_bytes()
    # Every kind of change the sample is built to show.
    assert plan["changes"]["new"] > 0 and plan["changes"]["unchanged"] > 0
    assert plan["changes"]["relatch"] > 0 and plan["writes"] == 0
    assert run["counts"]["success"] > 0 and run["counts"]["failed"] > 0
    # run --plan latest wrote what the plan showed but the customer changed since it.
    assert run["plan"] == sorted((out / RUNS).iterdir())[0].name
    assert run["writes"] == plan["changes"]["new"] + plan["changes"]["relatch"] - 1
    stale = [r for r in _results(sorted((out / RUNS).iterdir())[1]) if r["status"] == "failed"]
    assert [(r["fusebillId"], r["error_key"]) for r in stale] == [
        (str(demo.CHANGED_SINCE[0]), "stale_plan")
    ]
    # The re-run sends nothing the run settled: only refused or unsettled rows are read.
    assert rerun["writes"] == 0
    assert rerun["counts"]["success"] == run["counts"]["success"]


def _results(folder: Path) -> list[dict[str, str]]:
    with (folder / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))
