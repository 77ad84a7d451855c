"""Who the sandbox's customers are, what each holds, and how Fusebill shows a customer."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

KNOWN_ID_MIN = 1_000_000
KNOWN_ID_MAX = 9_999_999
EXTRA_CUSTOMER_IDS: frozenset[int] = frozenset({12_717_595, 671_201})
MAX_FUSEBILL_ID = 2**63 - 1

_FIRST_NAMES = ("John", "Maria", "Ahmed", "Chloe", "Liam", "Priya", "Kenji", "Sofia")
_LAST_NAMES = ("Doe", "Tremblay", "Nguyen", "Okafor", "Schmidt", "Rossi", "Kowalski", "Silva")
_COMPANIES = (
    "Stolen Bikes",
    "Northwind Fleet",
    "ACME Haulage",
    "Blue Line Couriers",
    "Harbour Taxis",
    "Prairie Freight",
    "Maple Leaf Logistics",
    "Granite Transport",
)
_CREATED = "2020-07-07T12:59:17.7930000Z"
_INITIAL_MODIFIED = "2020-07-07T14:42:12.8536714Z"


def is_known_customer(fusebill_id: int) -> bool:
    """Whether the sandbox answers for this id instead of 404."""
    return KNOWN_ID_MIN <= fusebill_id <= KNOWN_ID_MAX or fusebill_id in EXTRA_CUSTOMER_IDS


def known_ids_text() -> str:
    """The known ids in words, for error messages that must say what would have worked."""
    extra = ", ".join(str(fid) for fid in sorted(EXTRA_CUSTOMER_IDS))
    return f"{KNOWN_ID_MIN}..{KNOWN_ID_MAX} or {extra}"


def dotnet_timestamp(t: float) -> str:
    """A UTC time with seven fractional digits, as Fusebill's .NET serializer writes it."""
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S.%f}0Z"


@dataclass(frozen=True)
class Record:
    """What one customer holds; immutable, so a snapshot can leave the lock safely."""

    geotab_id: str | None = None
    modified: str = _INITIAL_MODIFIED


class Customers:
    """Every customer's ``geotabId``, behind one lock (handlers run in parallel threads)."""

    def __init__(self, preset: Mapping[int, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, Record] = {fid: Record(gid) for fid, gid in (preset or {}).items()}

    def get(self, fusebill_id: int) -> Record:
        with self._lock:
            return self._records.get(fusebill_id) or Record()

    def store(self, fusebill_id: int, value: str | None) -> Record:
        """Set (``None``: clear) a customer's ``geotabId`` and stamp the change."""
        record = Record(value, dotnet_timestamp(time.time()))
        with self._lock:
            self._records[fusebill_id] = record
        return record

    def latch(self, fusebill_id: int, value: str, refuse_if_holds: str | None) -> Record | None:
        """Store ``value``; ``None`` (nothing changed) if the customer holds ``refuse_if_holds``."""
        with self._lock:
            current = self._records.get(fusebill_id) or Record()
            if refuse_if_holds is not None and current.geotab_id == refuse_if_holds:
                return None
            record = Record(value, dotnet_timestamp(time.time()))
            self._records[fusebill_id] = record
            return record


def customer_json(
    fusebill_id: int, record: Record, show_geotab_id: bool = True, base: str = ""
) -> dict[str, Any]:
    """A customer shaped like a live one (Fusebill's Latch Customer answer, as the live API
    writes it): a top-level ``geotabId`` (``null`` when none), ``hubSpotId``,
    ``hubSpotCompanyId``, ``digitalRiverId``, ``isParent``, ``canChangeCurrency``, both
    timestamps with seven fractional digits and ``Z``, and an absolute ``uri``
    (``{base}/customers/{id}``, ``base`` the URL the sandbox serves under).

    ``show_geotab_id=False`` leaves the key out entirely, as an API that does not expose it
    would (Fusebill's documented customer fields do not list it; its latch answer does).
    """
    first, last, company = _names(fusebill_id)
    customer: dict[str, Any] = {
        "firstName": first,
        "middleName": None,
        "lastName": last,
        "companyName": company,
        "suffix": None,
        "primaryEmail": f"{first}.{last}.{fusebill_id}@example.com".lower(),
        "primaryPhone": "613-555-5555",
        "secondaryEmail": None,
        "secondaryPhone": None,
        "title": "Mr" if first in ("John", "Ahmed", "Liam", "Kenji") else "Ms",
        "reference": str(fusebill_id % 10_000),
        "status": "Active",
        "customerAccountStatus": "Good",
        "currency": "USD",
        "customerReference": _sub_object(fusebill_id, "reference1", "reference2", "reference3"),
        "customerAcquisition": _sub_object(
            fusebill_id, "adContent", "campaign", "keyword", "landingPage", "medium", "source"
        ),
        "monthlyRecurringRevenue": 25.98,
        "netMonthlyRecurringRevenue": 25.98,
        "salesforceId": None,
        "salesforceAccountType": None,
        "salesforceSynchStatus": "Enabled",
        "netsuiteId": None,
        "netsuiteSynchStatus": "Enabled",
        "netsuiteCustomerType": "",
        "portalUserName": None,
        "parentId": None,
        "quickBooksLatchType": None,
        "quickBooksId": None,
        "quickBooksSyncToken": None,
        "hubSpotId": None,
        "hubSpotCompanyId": None,
        "digitalRiverId": None,
        "geotabId": record.geotab_id,
        "isParent": False,
        "canChangeCurrency": False,
        "modifiedTimestamp": record.modified,
        "createdTimestamp": _CREATED,
        "id": fusebill_id,
        "uri": f"{base.rstrip('/')}/customers/{fusebill_id}",
    }
    if not show_geotab_id:
        del customer["geotabId"]
    return customer


def _names(fusebill_id: int) -> tuple[str, str, str]:
    """First, last and company name: Fusebill's documented example for its example id, else
    picked by the id (the same every time)."""
    if fusebill_id == 671_201:
        return "John", "Doe", "Stolen Bikes"
    return (
        _FIRST_NAMES[fusebill_id % len(_FIRST_NAMES)],
        _LAST_NAMES[(fusebill_id // 7) % len(_LAST_NAMES)],
        _COMPANIES[(fusebill_id // 3) % len(_COMPANIES)],
    )


def _sub_object(fusebill_id: int, *null_keys: str) -> dict[str, Any]:
    sub: dict[str, Any] = dict.fromkeys(null_keys)
    if "reference1" in null_keys:
        sub["salesTrackingCodes"] = []
    sub["id"] = fusebill_id
    sub["uri"] = f"/{fusebill_id}"
    return sub
