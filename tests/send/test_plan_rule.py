"""run --plan's per-row rule: the plan's change by what the customer holds now, to an outcome."""

from __future__ import annotations

import pytest

from batch_latch.fusebill.answers import Holding
from batch_latch.jobfolder.plans import PlanEntry
from batch_latch.send.plan_rule import Call, against_plan
from batch_latch.vocab import Change

ROW = "GT-NEW"
NONE = Holding(None, True)
HIDDEN = Holding(None, False)  # this API shows no geotabId


def planned(change: str, held: str | None, status: str = "valid", gid: str = ROW) -> PlanEntry:
    return PlanEntry(gid, status, change, held)


@pytest.mark.parametrize(
    ("entry", "now", "call", "change"),
    [
        (planned("new", ""), NONE, Call.WRITE, Change.NEW),
        (planned("new", ""), Holding("OTHER", True), Call.STALE, Change.NONE),
        (planned("new", ""), Holding(ROW, True), Call.UNCHANGED, Change.UNCHANGED),
        (planned("relatch", "OLD"), Holding("OLD", True), Call.WRITE, Change.RELATCH),
        (planned("relatch", "OLD"), Holding("OTHER", True), Call.STALE, Change.NONE),
        (planned("relatch", "OLD"), NONE, Call.STALE, Change.NONE),
        (planned("relatch", "OLD"), Holding(ROW, True), Call.UNCHANGED, Change.UNCHANGED),
        (planned("unchanged", ROW), Holding(ROW, True), Call.UNCHANGED, Change.UNCHANGED),
        (planned("unchanged", ROW), NONE, Call.STALE, Change.NONE),
        (planned("unknown", None), HIDDEN, Call.WRITE, Change.UNKNOWN),
        (planned("unknown", None), Holding("OLD", True), Call.WRITE, Change.UNKNOWN),
        (planned("new", ""), HIDDEN, Call.STALE, Change.NONE),
        (planned("", None, status="not_found"), NONE, Call.STALE, Change.NONE),
        (planned("", None, status="invalid"), NONE, Call.STALE, Change.NONE),
        (planned("new", "", gid="GT-OTHER"), NONE, Call.STALE, Change.NONE),
        (None, NONE, Call.STALE, Change.NONE),
        (None, Holding(ROW, True), Call.UNCHANGED, Change.UNCHANGED),
    ],
    ids=[
        "new-still-none",
        "new-now-another",
        "new-now-this-one",
        "relatch-still-old",
        "relatch-now-another",
        "relatch-now-none",
        "relatch-now-this-one",
        "unchanged-still",
        "unchanged-now-none",
        "unknown-hidden",
        "unknown-any",
        "new-now-hidden",
        "not-found",
        "invalid",
        "plan-for-another-geotab-id",
        "not-in-plan",
        "not-in-plan-but-right",
    ],
)
def test_the_rule(entry: PlanEntry | None, now: Holding, call: Call, change: Change) -> None:
    got = against_plan(entry, ROW, now)
    assert (got.call, got.change) == (call, change)
    if call is Call.STALE:
        assert got.message.startswith("stale plan: ") and "nothing was written" in got.message


def test_the_stale_message_says_what_the_plan_saw_and_what_it_holds_now() -> None:
    got = against_plan(planned("relatch", "OLD"), ROW, Holding("SOMEONE-ELSE", True))
    assert "'OLD'" in got.message and "'SOMEONE-ELSE'" in got.message
