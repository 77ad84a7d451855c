"""Fusebill's customer list, ``GET /v1/customers?query=id:1,2&pageSize=N&pageNumber=K``.

Kept apart from ``routes`` (which only dispatches here), and free of HTTP objects: the answer
is a ``Listing`` that ``routes`` wraps, so the paging arithmetic can be tested on its own.

Paging, pages counted from 0, written as ``ListHeaders`` says (``--list-headers``), since
nobody outside Fusebill knows which reading its live API uses:

* ``docs`` (the default: Fusebill's "Pagination" page taken literally): ``X-MaxPageIndex`` the
  total number of pages, ``ceil(MaxCount / PageSize)`` (0 when nothing matches), and
  ``X-Count`` the total number of results that match;
* ``index`` (a public Fusebill tap's reading): ``X-MaxPageIndex`` the last page's index,
  ``ceil(MaxCount / PageSize) - 1`` (0 when nothing matches), and ``X-Count`` the objects on
  this page;
* ``none``: no paging headers at all.

Either way ``X-MaxCount`` is every customer that matches, ``X-PageSize`` and
``X-CurrentPage`` the page size and number used, ``X-NextPage`` ``CurrentPage + 1`` while
that page exists (else empty) and ``X-PreviousPage`` the page before, capped at the last page
(so a page past the end points back at the last one), empty on page 0.

A list without ``query`` pages through every known customer in id order.

``CustomerList`` rehearses the lists a client must not trust: one that ignores ``query`` and
pages through every known customer, one whose objects carry no ``geotabId``, and none at all
(ASP.NET's own 404, not Fusebill's error format).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .customers import (
    EXTRA_CUSTOMER_IDS,
    KNOWN_ID_MAX,
    KNOWN_ID_MIN,
    MAX_FUSEBILL_ID,
    Customers,
    customer_json,
    is_known_customer,
)

LIST_PATH = "/v1/customers"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 20  # what an answer uses when the request names no pageSize
MAX_PAGE_NUMBER = 2**31 - 1  # .NET binds pageNumber to an int
PAGING_HEADERS = (
    "X-MaxPageIndex",
    "X-CurrentPage",
    "X-PageSize",
    "X-Count",
    "X-MaxCount",
    "X-NextPage",
    "X-PreviousPage",
)

# Every known customer in id order, as segments: the extra ids below the range, the range,
# the extra ids above it. An id at a position is then arithmetic, not a 9-million-item list.
_BELOW = tuple(sorted(fid for fid in EXTRA_CUSTOMER_IDS if fid < KNOWN_ID_MIN))
_ABOVE = tuple(sorted(fid for fid in EXTRA_CUSTOMER_IDS if fid > KNOWN_ID_MAX))
_RANGE_COUNT = KNOWN_ID_MAX - KNOWN_ID_MIN + 1
KNOWN_COUNT = len(_BELOW) + _RANGE_COUNT + len(_ABOVE)


class CustomerList(str, enum.Enum):
    """How the sandbox's customer list behaves (``--customer-list``)."""

    FULL = "full"  # the customers of the set, with geotabId, as Fusebill documents
    IGNORES_FILTER = "ignores-filter"  # every known customer, whatever the query asked
    NO_GEOTAB = "no-geotab"  # as FULL, but no object carries a geotabId key
    MISSING = "missing"  # no such route: ASP.NET's 404


class ListHeaders(str, enum.Enum):
    """How the list writes its paging headers (``--list-headers``)."""

    DOCS = "docs"  # X-MaxPageIndex: total pages; X-Count: total results (Fusebill's page)
    INDEX = "index"  # X-MaxPageIndex: the last page's index; X-Count: this page's objects
    NONE = "none"  # no paging headers


class ListQueryError(ValueError):
    """A list request the sandbox cannot parse: a 400 in Fusebill's error format."""


@dataclass(frozen=True)
class ListParams:
    """A parsed list request; ``ids`` is None when the filter is ignored (every customer)."""

    ids: tuple[int, ...] | None
    page_size: int = DEFAULT_PAGE_SIZE
    page_number: int = 0


@dataclass(frozen=True)
class Page:
    """Which customers one page shows, and the paging headers that describe it."""

    ids: tuple[int, ...]
    total: int
    page_size: int
    page_number: int

    @property
    def pages(self) -> int:
        """How many pages the customers that match fill (0 when none match)."""
        return math.ceil(self.total / self.page_size)

    @property
    def max_page_index(self) -> int:
        """The last page's index (0 when none match: page 0 then exists, empty)."""
        return max(0, self.pages - 1)

    def headers(self, style: ListHeaders = ListHeaders.DOCS) -> list[tuple[str, str]]:
        if style is ListHeaders.NONE:
            return []
        last, k = self.max_page_index, self.page_number
        following = str(k + 1) if k < last else ""
        previous = str(min(k - 1, last)) if k > 0 else ""
        if style is ListHeaders.DOCS:
            first, count = self.pages, self.total
        else:
            first, count = last, len(self.ids)
        values = (first, k, self.page_size, count, self.total, following, previous)
        return list(zip(PAGING_HEADERS, (str(v) for v in values)))


@dataclass(frozen=True)
class Listing:
    """The list's answer before it meets HTTP: status, JSON payload, extra headers, log note."""

    status: int
    payload: Any
    note: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    listed: int | None = None  # customer objects in a 200 answer


def is_list_route(method: str, path: str) -> bool:
    """Whether a request is for the list (paths match ignoring case and a trailing slash)."""
    return method in ("GET", "HEAD") and path.rstrip("/").lower() == LIST_PATH


def parse_id_query(text: str) -> tuple[int, ...]:
    """The distinct ids of ``id:1,2,3``, in id order; ``ListQueryError`` for anything else."""
    key, sep, values = text.partition(":")
    if not sep or key.strip().lower() != "id":
        raise ListQueryError(
            f"Cannot parse query {text!r}: this API filters customers on id only "
            "(query=id:<id>,<id>,...)"
        )
    ids: set[int] = set()
    for item in values.split(","):
        item = item.strip()
        if not (item.isascii() and item.isdigit()) or not 1 <= int(item) <= MAX_FUSEBILL_ID:
            raise ListQueryError(f"Cannot parse query {text!r}: {item!r} is not a customer id")
        ids.add(int(item))
    return tuple(sorted(ids))


def asked_ids(query_string: str) -> tuple[int, ...]:
    """The ids a list request's query string asks for; empty when it cannot be parsed."""
    try:
        params = parse_params(query_string, ignore_filter=False)
    except ListQueryError:
        return ()
    return params.ids or ()


def parse_params(query_string: str, ignore_filter: bool) -> ListParams:
    """``query``, ``pageSize`` and ``pageNumber`` (names match ignoring case, as in ASP.NET);
    ``ids`` None (every customer) without ``query`` or when the filter is ignored."""
    found: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        key = name.lower()
        if key in found:
            raise ListQueryError(f"The parameter {name!r} is given more than once")
        found[key] = value
    size = _number(found, "pagesize", "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    number = _number(found, "pagenumber", "pageNumber", 0, 0, MAX_PAGE_NUMBER)
    if ignore_filter or "query" not in found:
        return ListParams(None, size, number)
    return ListParams(parse_id_query(found["query"]), size, number)


def _number(found: dict[str, str], key: str, name: str, default: int, low: int, high: int) -> int:
    text = found.get(key)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise ListQueryError(f"{name} must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


def page_of(params: ListParams) -> Page:
    """The page ``params`` asks for: the known customers of its set, or every known one."""
    size, number = params.page_size, params.page_number
    start = min(number * size, KNOWN_COUNT)  # bounded, so a huge pageNumber costs nothing
    if params.ids is None:
        end = min(start + size, KNOWN_COUNT)
        return Page(tuple(known_id_at(i) for i in range(start, end)), KNOWN_COUNT, size, number)
    known = [fid for fid in params.ids if is_known_customer(fid)]
    return Page(tuple(known[start : start + size]), len(known), size, number)


def known_id_at(index: int) -> int:
    """The ``index``-th known customer id (from 0) in id order."""
    if not 0 <= index < KNOWN_COUNT:
        raise IndexError(index)
    if index < len(_BELOW):
        return _BELOW[index]
    index -= len(_BELOW)
    if index < _RANGE_COUNT:
        return KNOWN_ID_MIN + index
    return _ABOVE[index - _RANGE_COUNT]


def customer_list(
    mode: CustomerList,
    customers: Customers,
    query_string: str,
    path: str,
    show_geotab_id: bool,
    style: ListHeaders = ListHeaders.DOCS,
    base: str = "",
) -> Listing:
    """The whole answer to one list request, as ``mode`` plays it, with paging headers as
    ``style`` writes them and objects whose ``uri`` starts with ``base``.

    Raises ``ListQueryError`` for a request it cannot parse (``routes`` answers 400 in
    Fusebill's error format).
    """
    if mode is CustomerList.MISSING:
        return missing_route(path, query_string)
    params = parse_params(query_string, ignore_filter=mode is CustomerList.IGNORES_FILTER)
    page = page_of(params)
    show = show_geotab_id and mode is not CustomerList.NO_GEOTAB
    objects = [customer_json(fid, customers.get(fid), show, base) for fid in page.ids]
    if mode is CustomerList.IGNORES_FILTER:
        what = f"list ignoring the filter: {len(objects)} of all {page.total}"
    elif params.ids is None:
        what = f"list of every customer: {len(objects)} of {page.total}"
    else:
        what = f"list: {len(objects)} of {len(params.ids)} asked ({page.total} known)"
    note = f"{what}, page {page.page_number}"
    return Listing(200, objects, note, page.headers(style), len(objects))


def missing_route(path: str, query_string: str) -> Listing:
    """ASP.NET Web API's answer for a route it does not have: 404, not Fusebill's format."""
    uri = path + ("?" + query_string if query_string else "")
    payload = {
        "Message": f"No HTTP resource was found that matches the request URI '{uri}'.",
        "MessageDetail": "No action was found on the controller 'Customers' that matches the "
        "request.",
    }
    return Listing(404, payload, "list: no such route (ASP.NET 404)")
