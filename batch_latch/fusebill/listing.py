"""Reading many customers at once through Fusebill's customer list, and how far one list
answer may be trusted (contract v3 "Reading many customers at once"). Pure: no HTTP.

Whether a list object carries ``geotabId``, and whether an account's API honours the id
filter, is not documented, so every answer proves itself customer by customer, and an answer
that shows anything it was not asked for is not used at all: a list trusted wrongly would
write over links the tool should have refused. The URL and the batches are built here too,
so the client and the batch cutter agree on every character.

Paging (contract v4 "The customer list's paging headers, read either way"): Fusebill's page
calls ``X-MaxPageIndex`` the total number of pages and ``X-Count`` the total of results, a
public tap reads them as the last page's index and this page's count, and an answer may carry
no paging headers at all. Neither is needed: the next page is read only while some id asked
for is still unanswered and the page read was full (as many objects as ``X-PageSize``, the
page size in effect) and brought ids not shown before. Without ``X-PageSize`` the page size
in effect is unknown (a server may cap it below what was asked), so the next page is read
while the last one brought ids asked for: finding the end costs at most one request more.
No paging header ever makes a list untrusted, and ``X-MaxPageIndex`` never asks for a page.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batch_latch.fusebill.answers import (
    Holding,
    Meaning,
    Reply,
    Verdict,
    describe,
    error_text,
    outside_2xx,
)
from batch_latch.vocab import ErrorKey

MAX_URL = 2000  # every list URL is shorter than this, in characters
MAX_PAGE_SIZE = 1000  # the most Fusebill pages at once
BYTES_PER_CUSTOMER = 8 * 1024  # a list answer may be this large per customer asked
# Answers to the list that mean "this API's list is not to be trusted", not a stop: the
# contract's 400, 404, 405 and 414, and any 4xx that is not the key's, the proxy's, a
# retryable one or the rate limit's (a list the API does not serve is no row's refusal).
_MEANT_FOR_ANY_REQUEST = frozenset({401, 403, 407, 408, 409, 429})
_EXCERPT = 60


# --- the request -----------------------------------------------------------------------------


def page_size(count: int) -> int:
    """``pageSize`` for a batch of ``count`` ids: room for all of them, at most 1,000."""
    if not 1 <= count <= MAX_PAGE_SIZE:
        raise ValueError(f"a list read asks for 1 to {MAX_PAGE_SIZE} ids, not {count}")
    return count


def list_url(base_url: str, ids: Sequence[int], page: int = 0) -> str:
    """``{base}/customers?query=id:<id>,<id>,…&pageSize=<n>&pageNumber=<page>``."""
    query = ",".join(str(i) for i in ids)
    return (
        f"{base_url.rstrip('/')}/customers?query=id:{query}"
        f"&pageSize={page_size(len(ids))}&pageNumber={page}"
    )


def batches(base_url: str, ids: Iterable[int], read_batch: int) -> list[list[int]]:
    """``ids`` (each once, in order) cut into batches of at most ``read_batch`` ids whose
    list URL stays under :data:`MAX_URL` characters for every page such a batch can have
    (an honest answer to ``n`` ids has at most ``n`` pages, so ``pageNumber`` < ``n``).

    Raises ``ValueError`` for a ``read_batch`` outside 1..1,000, or when the base URL is so
    long that not even one id fits (then read one by one)."""
    if not 1 <= read_batch <= MAX_PAGE_SIZE:
        raise ValueError(f"read_batch is 1 to {MAX_PAGE_SIZE}, not {read_batch}")
    fixed = len(list_url(base_url, [0], 0)) - 1  # everything but the one id's digit
    out: list[list[int]] = []
    batch: list[int] = []
    digits = 0  # of the ids in ``batch``, with their commas
    for fid in dict.fromkeys(ids):
        own = len(str(fid))
        if batch and (
            len(batch) == read_batch or _length(fixed, digits + 1 + own, len(batch) + 1) >= MAX_URL
        ):
            out.append(batch)
            batch, digits = [], 0
        if not batch and _length(fixed, own, 1) >= MAX_URL:
            raise ValueError(
                f"a list URL for customer {fid} would be {_length(fixed, own, 1)} characters "
                f"(the limit is under {MAX_URL}): the base URL is too long for list reads"
            )
        digits += own + (1 if batch else 0)
        batch.append(fid)
    if batch:
        out.append(batch)
    return out


def _length(fixed: int, digits: int, count: int) -> int:
    """The longest list URL of a batch: ``fixed`` holds one-digit pageSize and pageNumber."""
    return fixed + digits + len(str(page_size(count))) - 1 + len(str(count - 1)) - 1


# --- the answer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListAnswer:
    """What one list answer (one page) may be used for.

    - ``verdict``: ``SUCCESS`` for an answer that may be used customer by customer;
      ``REJECTED`` with error_key ``list_untrusted`` when nothing in it may be used
      (``untrusted`` says why); else the verdict any request gets (429, 401/403, 3xx, TLS,
      proxy, 408/409, 5xx, timeout, connection, an oversized answer): the runner treats it
      as for any request, and then ``holdings`` and ``read_alone`` are empty.
    - ``holdings``: the customers this answer read (asked-for integer id, ``geotabId`` key
      present and text, null or empty, shown once).
    - ``read_alone``: the asked ids this answer gives no read for, in the order asked: absent
      from it, or shown without a ``geotabId`` key, with a geotabId that is not text, or more
      than once; every asked id when untrusted. With ``next_page`` set, absent ids may still
      come on a later page: merge the pages with :meth:`then` before reading any alone.
    - ``no_geotab_anywhere``: the answer showed objects and none had the key: this API's
      list does not show geotabIds; read the rest of the command one by one.
    - ``next_page``: the page to read next (see the module's paging rule), or None.
    - ``shown``: the asked ids that had an object in the answer, usable or not.
    - ``page``, ``objects``, ``size_in_effect``, ``brought``: the last page read, its count of
      objects, its ``X-PageSize`` (None when absent or unreadable) and whether it showed
      asked ids no earlier page had shown.
    """

    verdict: Verdict
    asked: tuple[int, ...]
    holdings: Mapping[int, Holding] = field(default_factory=dict)
    read_alone: tuple[int, ...] = ()
    untrusted: str | None = None
    no_geotab_anywhere: bool = False
    shown: frozenset[int] = frozenset()
    page: int = 0
    objects: int = 0
    size_in_effect: int | None = None
    brought: bool = False

    @property
    def next_page(self) -> int | None:
        """The page to read next: only while some asked id is unanswered and the last page
        brought new ones and was not short of the page size in effect (when it is known)."""
        if self.verdict.kind is not Meaning.SUCCESS or self.one_by_one or not self.brought:
            return None
        if self.shown >= set(self.asked):
            return None  # every id asked for is answered
        if self.size_in_effect is not None and self.objects < self.size_in_effect:
            return None  # a short page is the last one
        following = self.page + 1
        # an honest answer to n ids has at most n pages (the batch's URLs are cut for that)
        return following if following < len(self.asked) else None

    @property
    def answered(self) -> bool:
        """Whether the list answered at all (trusted or not); else act on ``verdict``."""
        return self.verdict.kind is Meaning.SUCCESS or self.untrusted is not None

    @property
    def one_by_one(self) -> bool:
        """Whether every read of the rest of the command must be made one by one."""
        return self.untrusted is not None or self.no_geotab_anywhere

    @property
    def notice(self) -> str | None:
        """The one stderr line for a switch to one-by-one reads (said once a command)."""
        if self.untrusted is not None:
            return (
                f"{self.untrusted}: this API's customer list cannot be trusted, so every read "
                "of the rest of the command is made one by one (a request each)"
            )
        if self.no_geotab_anywhere:
            return (
                "the customer list shows no geotabId, so every read of the rest of the "
                "command is made one by one (a request each)"
            )
        return None

    def then(self, later: ListAnswer) -> ListAnswer:
        """This page and the ``later`` page of the same ids as one answer. A later page that
        is untrusted or did not answer is the whole answer; an id shown unusable on either
        page, or with two different holdings, is read alone."""
        if self.verdict.kind is not Meaning.SUCCESS or later.verdict.kind is not Meaning.SUCCESS:
            return later if self.verdict.kind is Meaning.SUCCESS else self
        spoiled = (self.shown - self.holdings.keys()) | (later.shown - later.holdings.keys())
        spoiled |= {i for i, h in later.holdings.items() if self.holdings.get(i, h) != h}
        both = {**self.holdings, **later.holdings}
        holdings = {i: both[i] for i in self.asked if i in both and i not in spoiled}
        pages = [a for a in (self, later) if a.shown]
        message = f"the customer list read {len(holdings)} of {len(self.asked)} customers"
        return dataclasses.replace(
            later,
            verdict=Verdict(Meaning.SUCCESS, message),
            asked=self.asked,
            holdings=holdings,
            read_alone=tuple(i for i in self.asked if i not in holdings),
            no_geotab_anywhere=bool(pages) and all(a.no_geotab_anywhere for a in pages),
            shown=self.shown | later.shown,
            brought=bool(later.shown - self.shown),
        )


def classify_list(reply: Reply, asked: Sequence[int], page: int = 0) -> ListAnswer:
    """What the answer to ``GET {base}/customers?query=id:…&pageNumber=page`` may be used for
    (see :class:`ListAnswer`). The contract's trust list, rule by rule."""
    wanted = tuple(dict.fromkeys(asked))
    status = reply.status
    if status is not None and (100 <= status < 200 or _untrusted_4xx(status)):
        what = error_text(reply.body)[0] or describe(reply)
        return _untrusted(wanted, f"the customer list answered HTTP {status} ({_short(what)})")
    verdict = outside_2xx(reply)
    if verdict is not None:
        return ListAnswer(verdict, wanted)
    if reply.error is not None:  # too large: not read, like any oversized answer
        why = f"the customer list answered {status}: {reply.detail or describe(reply)}"
        return ListAnswer(Verdict(Meaning.RETRYABLE, why, ErrorKey.UNREADABLE), wanted)
    problem = _shape_problem(reply, set(wanted))
    if problem is not None:
        return _untrusted(wanted, f"the customer list answered {status} with {problem}")
    return _trusted(reply, wanted, page)


def _untrusted_4xx(status: int) -> bool:
    return 400 <= status < 500 and status not in _MEANT_FOR_ANY_REQUEST


def _untrusted(asked: tuple[int, ...], why: str) -> ListAnswer:
    verdict = Verdict(Meaning.REJECTED, why, ErrorKey.LIST_UNTRUSTED)
    return ListAnswer(verdict, asked, read_alone=asked, untrusted=why)


def _shape_problem(reply: Reply, asked: set[int]) -> str | None:
    """Why the body is not a JSON array of objects with asked-for integer ids, or None."""
    body = reply.body
    if not isinstance(body, list):
        if isinstance(body, dict):
            names = ", ".join(list(map(str, body))[:6])
            return f"a JSON object (keys: {names or 'none'}), not an array of customers"
        return describe(reply)
    for n, item in enumerate(body):
        if not isinstance(item, dict):
            return f"an array whose item {n} is not an object ({_short(repr(item))})"
        if "id" not in item:
            return f"an array whose item {n} has no id"
        fid = item["id"]
        if isinstance(fid, bool) or not isinstance(fid, int):
            return f"an array whose item {n} has an id that is not an integer ({_short(repr(fid))})"
        if fid not in asked:
            return f"customer {fid}, which was not asked for (the id filter was not applied)"
    return None


def _trusted(reply: Reply, asked: tuple[int, ...], page: int) -> ListAnswer:
    objects: list[dict[str, Any]] = reply.body
    seen = Counter(item["id"] for item in objects)
    holdings: dict[int, Holding] = {}
    for item in objects:
        holding = _holding(item)
        if holding is not None and seen[item["id"]] == 1:
            holdings[item["id"]] = holding
    ordered = {i: holdings[i] for i in asked if i in holdings}
    shown = frozenset(seen)
    message = f"the customer list read {len(ordered)} of {len(asked)} customers"
    return ListAnswer(
        Verdict(Meaning.SUCCESS, message),
        asked,
        holdings=ordered,
        read_alone=tuple(i for i in asked if i not in ordered),
        no_geotab_anywhere=bool(objects) and not any("geotabId" in o for o in objects),
        shown=shown,
        page=page,
        objects=len(objects),
        size_in_effect=_page_size_header(reply),
        brought=bool(shown),
    )


def _holding(item: Mapping[str, Any]) -> Holding | None:
    """The customer's read from its list object, or None when it must be read alone."""
    if "geotabId" not in item:
        return None
    held = item["geotabId"]
    if held is None or held == "":
        return Holding(None)
    if isinstance(held, int) and not isinstance(held, bool):
        return Holding(str(held))  # as a one-by-one read takes it
    return Holding(held) if isinstance(held, str) else None


def _page_size_header(reply: Reply) -> int | None:
    """``X-PageSize``, the page size in effect; None when absent, unreadable or 0 (then the
    page size in effect is unknown). The one paging header every reading agrees on."""
    text = (reply.header("x-pagesize") or "").strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        return None
    return int(text)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else f"{text[:_EXCERPT]}…"
