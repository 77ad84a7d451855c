"""What a plan says it will do, in one place: the plan is the approval for ``run --plan``.

The summary line on stdout, each row's message and the Summary sheet of ``results.xlsx`` use
these words, so the artefact a lead signs off says what ``run --plan`` then does: it latches
the new ones, **replaces** the relatch ones (a reviewed relatch needs no
``--allow-relatch``), writes nothing to the unchanged and not-found ones. A ``run`` without
``--plan`` applies its own rules and refuses a relatch unless ``--allow-relatch``.
"""

from __future__ import annotations

from collections.abc import Mapping

from batch_latch.vocab import Change, Status, plural

#: A row's message in a plan, by the change it shows (relatch and not-found rows name more).
NEW_MESSAGE = "the customer holds no geotabId; run --plan will latch it"
UNKNOWN_MESSAGE = (
    "this API does not show the customer's geotabId; run --plan will latch it without knowing "
    "what it replaces"
)


def relatch_message(held: str) -> str:
    """A relatch row of a plan: what ``run --plan`` does, and what a plain run does."""
    return (
        f"the customer holds geotabId {held!r}; run --plan will replace it "
        "(a run without --plan refuses it unless --allow-relatch)"
    )


def row_message(change: Change, held: str | None) -> str:
    """The message of a plan's row whose customer was read and would be written."""
    if change is Change.RELATCH:
        return relatch_message(held or "")
    if change is Change.NEW:
        return NEW_MESSAGE
    return UNKNOWN_MESSAGE


def unread(counts: Mapping[Status, int]) -> int:
    """Rows of a plan whose customer it could not read (``failed``: unreadable; ``pending``:
    not reached before a stop)."""
    return counts.get(Status.FAILED, 0) + counts.get(Status.PENDING, 0)


def plan_lines(changes: Mapping[Change, int], counts: Mapping[Status, int]) -> list[str]:
    """What ``run --plan`` of this plan will do, naming how many of each change, then what a
    run without ``--plan`` does with the relatch rows, then the rows the plan did not read."""
    new = changes.get(Change.NEW, 0)
    relatch = changes.get(Change.RELATCH, 0)
    unchanged = changes.get(Change.UNCHANGED, 0)
    unknown = changes.get(Change.UNKNOWN, 0)
    missing = counts.get(Status.NOT_FOUND, 0)
    first = (
        f"run --plan will latch {new:,} new, will replace {plural(relatch, 'geotabId')} "
        f"(relatch), writes nothing to {unchanged:,} unchanged"
        + (f", will latch {unknown:,} unknown (their geotabIds not shown)" if unknown else "")
        + f"; {missing:,} not found (nothing written)"
    )
    lines = [first]
    if relatch:
        lines.append(
            f"a run without --plan refuses the {plural(relatch, 'relatch', 'relatches')} "
            "unless --allow-relatch"
        )
    left = unread(counts)
    if left:
        lines.append(
            f"{plural(left, 'row')} not read (failed or pending): run --plan refuses this "
            "plan; make a new plan"
        )
    return lines
