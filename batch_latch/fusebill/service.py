"""What the runner needs from Fusebill, so tests and rehearsals can stand in for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from batch_latch.fusebill.answers import Reply


class FusebillService(Protocol):
    def latch(self, fusebill_id: int, geotab_id: str) -> Reply:
        """``POST {base}/Geotab/LatchCustomer {"fusebillId": n, "geotabId": "..."}``."""
        ...

    def unlatch(self, fusebill_id: int) -> Reply:
        """``POST {base}/Geotab/UnlatchCustomer {"fusebillId": n}``."""
        ...

    def customer(self, fusebill_id: int) -> Reply:
        """``GET {base}/customers/{n}``."""
        ...

    def customers(self, ids: Sequence[int], page: int = 0) -> Reply:
        """``GET {base}/customers?query=id:<id>,…&pageSize=<n>&pageNumber=<page>`` for 1 to
        1,000 ids (cut with :func:`batch_latch.fusebill.listing.batches`); what the answer may be
        trusted for is :func:`batch_latch.fusebill.listing.classify_list`."""
        ...

    def redact(self, text: str) -> str:
        """``text`` without the API key (see :mod:`batch_latch.fusebill.redact`)."""
        ...

    def abort(self) -> None:
        """Cut the requests in flight at once (a second Ctrl-C): their outcome is unknown."""
        ...

    def close(self) -> None: ...
