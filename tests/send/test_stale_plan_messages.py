"""What a ``run --plan`` row that was not written says (its results.csv message): what the
plan saw, what the customer holds now, and that nothing was written."""

from __future__ import annotations

import pytest

from batch_latch.fusebill.answers import Holding
from batch_latch.jobfolder.plans import PlanEntry
from batch_latch.send.plan_rule import Call, against_plan

ROW = "GT-NEW"


@pytest.mark.parametrize(
    ("entry", "now", "message"),
    [
        (
            None,
            Holding("OTHER", True),
            "stale plan: the plan has no row for this customer; it holds 'OTHER' now, "
            "so nothing was written",
        ),
        (
            PlanEntry("GT-PLANNED", "valid", "new", ""),
            Holding(None, True),
            "stale plan: the plan was for geotabId 'GT-PLANNED'; it holds no geotabId now, "
            "so nothing was written",
        ),
        (
            PlanEntry(ROW, "not_found", "", None),
            Holding("", True),
            "stale plan: the plan showed it not_found; it holds no geotabId now, "
            "so nothing was written",
        ),
        (
            PlanEntry(ROW, "valid", "new", ""),
            Holding(None, False),
            "stale plan: the plan saw it holding no geotabId; it holds a value this API does "
            "not show now, so nothing was written",
        ),
        (
            PlanEntry(ROW, "valid", "relatch", "OLD"),
            Holding("OTHER", True),
            "stale plan: the plan saw it holding 'OLD'; it holds 'OTHER' now, "
            "so nothing was written",
        ),
    ],
)
def test_a_stale_plan_row_says_what_the_plan_saw_and_what_the_customer_holds_now(
    entry: PlanEntry | None, now: Holding, message: str
) -> None:
    ruling = against_plan(entry, ROW, now)
    assert (ruling.call, ruling.message) == (Call.STALE, message)
