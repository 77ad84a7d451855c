"""``run --plan``: a customer is written only when it still holds exactly what the
reviewed plan saw (contract v3, "Run what was reviewed").

=============================  ==========================  ============================
the plan showed                the customer holds now      the run
=============================  ==========================  ============================
anything                       the row's geotabId          success, ``unchanged``
``new``                        none                        latch, ``new``
``relatch`` (held X)           X                           latch, ``relatch`` (the plan
                                                           is the approval)
``unknown`` (no geotabIds)     anything                    latch, ``unknown``
anything else, not_found,      anything else               failed ``stale_plan``,
invalid, not in the plan                                   nothing written
=============================  ==========================  ============================

``--allow-relatch`` does not widen a plan.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from batch_latch.fusebill.answers import Holding
from batch_latch.jobfolder.plans import PlanEntry
from batch_latch.vocab import Change, Status


class Call(enum.Enum):
    WRITE = "write"
    UNCHANGED = "unchanged"
    STALE = "stale"


@dataclass(frozen=True)
class PlanCall:
    call: Call
    change: Change = Change.NONE
    message: str = ""


def _shown(value: str | None) -> str:
    return "no geotabId" if value in (None, "") else f"{value!r}"


def against_plan(entry: PlanEntry | None, geotab_id: str, holding: Holding) -> PlanCall:
    now = holding.geotab_id
    if holding.known and now == geotab_id:
        return PlanCall(Call.UNCHANGED, Change.UNCHANGED)
    if entry is None:
        return _stale("the plan has no row for this customer", holding)
    if entry.geotab_id != geotab_id:
        return _stale(f"the plan was for geotabId {entry.geotab_id!r}", holding)
    if entry.status != Status.VALID.value:
        return _stale(f"the plan showed it {entry.status}", holding)
    if entry.change == Change.UNKNOWN.value:
        return PlanCall(Call.WRITE, Change.UNKNOWN)
    if not holding.known:
        return _stale(f"the plan saw it holding {_shown(entry.held)}", holding)
    if entry.change == Change.NEW.value and now is None:
        return PlanCall(Call.WRITE, Change.NEW)
    if entry.change == Change.RELATCH.value and entry.held not in (None, "") and now == entry.held:
        return PlanCall(Call.WRITE, Change.RELATCH)
    return _stale(f"the plan saw it holding {_shown(entry.held)}", holding)


def _stale(saw: str, holding: Holding) -> PlanCall:
    now = _shown(holding.geotab_id) if holding.known else "a value this API does not show"
    return PlanCall(
        Call.STALE, Change.NONE, f"stale plan: {saw}; it holds {now} now, so nothing was written"
    )
