"""A plan that did not read every row is refused by ``run --plan`` (issue 26)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from batch_latch.errors import ConfigError
from batch_latch.jobfolder import plans


def _plan(folder: Path, statuses: list[str]) -> plans.Plan:
    n = len(statuses)
    plans.write_plan(
        folder,
        pa.array([str(1_000 + i) for i in range(n)]),
        pa.array([f"GT-{i}" for i in range(n)]),
        pa.array(statuses),
        pa.array(["new" if s == "valid" else "" for s in statuses]),
        pa.array(["" if s == "valid" else None for s in statuses]),
    )
    return plans.load(folder)


def test_a_finished_plan_is_accepted(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["valid", "valid", "not_found", "invalid"])
    plans.refuse_unfinished(plan, None, 1)  # not_found and invalid rows were read or judged


def test_rows_the_plan_could_not_read_refuse_it_without_a_stop(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["valid", "failed", "failed", "valid"])
    with pytest.raises(ConfigError) as refused:
        plans.refuse_unfinished(plan, None, 1)
    assert str(refused.value) == (
        f"--plan {tmp_path.name}: the plan did not finish; it did not read 2 of its 4 rows "
        "(failed or pending); make a new plan of the sheet and review that"
    )


@pytest.mark.parametrize(("reason", "code"), [("interrupted", 130), (None, 143)])
def test_a_stopped_plan_is_refused_even_with_every_row_read(
    tmp_path: Path, reason: str | None, code: int
) -> None:
    plan = _plan(tmp_path, ["valid"])
    with pytest.raises(ConfigError, match=r"did not finish \(stopped: (interrupted|exit 143)\)"):
        plans.refuse_unfinished(plan, reason, code)
