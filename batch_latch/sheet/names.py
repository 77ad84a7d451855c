"""Column names: how a header cell is recognised as the fusebillId or geotabId column."""

from __future__ import annotations


def normalise(name: str) -> str:
    """Case and everything but letters and digits ignored: ``Fusebill ID`` -> ``fusebillid``."""
    return "".join(c for c in name.casefold() if c.isalnum())


FUSEBILL_ALIASES = frozenset(
    normalise(n)
    for n in ("fusebillId", "Fusebill ID", "Fusebill Customer ID", "Fusebill Customer Number")
)
GEOTAB_ALIASES = frozenset(
    normalise(n)
    for n in (
        "geotabId",
        "Geotab ID",
        "Geotab Reseller ID",
        "Geotab Reseller Customer ID",
        "Geotab Customer ID",
    )
)
