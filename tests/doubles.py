"""Shared test doubles: an in-memory Fusebill behind the runner's seam, a full disk, and a
few ready-made answers.

:class:`FakeFusebill` implements :class:`batch_latch.fusebill.service.FusebillService`.
Unless a test
scripts something else, it behaves like the sandbox: it remembers each known customer's
geotabId, latches and unlatches them, and answers 404 in Fusebill's error format for
customers it does not know. A test scripts odd answers per ``(method, fusebillId)`` as a
queue: each entry is a :class:`~batch_latch.fusebill.answers.Reply` (returned as is, nothing
changes)
or a :class:`Landed` (the change is made, then that reply is returned: a request that
landed although its answer was lost).

Its customer list (``customers``) answers as a :class:`ListMode` says: honestly, or in each
of the shapes the tool must not trust; ``script_list`` queues odd list answers.
"""

from __future__ import annotations

import enum
import errno
import io
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from batch_latch.fusebill.answers import Reply, ReplyError

Method = Literal["latch", "unlatch", "customer", "customers"]
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Landed:
    """A scripted answer to a write that took effect anyway."""

    reply: Reply


Script = Reply | Landed


@dataclass(frozen=True)
class Call:
    method: Method
    fusebill_id: int
    geotab_id: str | None  # what a latch sent
    at: float  # time.monotonic() when the request was made
    ids: tuple[int, ...] = ()  # what a list read asked for (``fusebill_id`` is the first)
    page: int = 0  # the page a list read asked for


class ListMode(enum.Enum):
    """How the fake's customer list answers (the sandbox's ``--customer-list``, and more)."""

    FULL = "full"  # the known customers of the set, ordered by id, paged
    IGNORES_FILTER = "ignores-filter"  # the account's first customers, whatever was asked
    NO_GEOTAB = "no-geotab"  # the set, but no object carries a geotabId key
    MISSING = "missing"  # leaves out every other customer of the set (they do exist)
    UNASKED = "unasked"  # the set, plus one customer that was not asked for
    NOT_FOUND = "404"  # the route answers 404 in Fusebill's format ("Resource not found")
    HTML = "html"  # a 200 login page


# --- answers ---------------------------------------------------------------------------------


def customer_object(fusebill_id: int, geotab_id: str | None, *, show: bool = True) -> Reply:
    body: dict[str, Any] = {"id": fusebill_id, "uri": f"/customers/{fusebill_id}"}
    if show:
        body["geotabId"] = geotab_id
    return Reply(200, body, {"content-type": "application/json"})


def not_found(fusebill_id: int) -> Reply:
    return Reply(
        404,
        {
            "ErrorId": 0,
            "HttpStatusCode": 404,
            "Errors": [{"Key": "Api Error", "Value": f"Customer with id {fusebill_id} not found."}],
        },
    )


def error(status: int, text: str = "refused", headers: Mapping[str, str] | None = None) -> Reply:
    """An answer in Fusebill's error format with ``status``."""
    body = {"ErrorId": 0, "HttpStatusCode": status, "Errors": [{"Key": "Api Error", "Value": text}]}
    return Reply(status, body, {k.lower(): v for k, v in (headers or {}).items()})


def rate_limited(retry_after: str | None = None, text: str = "Rate limit exceeded") -> Reply:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return error(429, text, headers)


def html(status: int = 200, title: str = "Sign in") -> Reply:
    return Reply(status, f"<html><head><title>{title}</title></head><body>hi</body></html>")


def timeout() -> Reply:
    return Reply(None, None, error=ReplyError.TIMEOUT, detail="read timed out after 30 s")


def dropped() -> Reply:
    return Reply(None, None, error=ReplyError.CONNECTION, detail="connection reset by peer")


# --- the fake service ------------------------------------------------------------------------


class FakeFusebill:
    """Fusebill in memory; thread-safe. ``customers`` maps fusebillId -> geotabId (or None);
    :attr:`known` keeps it, as latches and unlatches change it.

    ``show_geotab=False`` answers customer reads without a ``geotabId`` key (an API that does
    not show it). ``max_calls`` guards a test against a loop that never ends: the call past
    it raises ``AssertionError``. ``on_call`` runs (outside the lock) for every request.
    ``list_mode`` is how the customer list answers; ``list_page_size`` cuts its answers into
    pages of that many customers (by default one page holds every id asked for), as a server
    capping ``pageSize`` would. ``list_headers`` is how its paging headers read: ``index``
    (``X-MaxPageIndex`` the last page's index, ``X-Count`` this page's objects), ``docs``
    (Fusebill's page taken literally: total pages, total results) or ``none`` (no paging
    headers at all).
    """

    def __init__(
        self,
        customers: Mapping[int, str | None] | None = None,
        *,
        key: str = "sk_test_FAKE_KEY",
        show_geotab: bool = True,
        max_calls: int = 10_000,
        on_call: Callable[[Call], None] | None = None,
        list_mode: ListMode = ListMode.FULL,
        list_page_size: int | None = None,
        list_headers: str = "index",
    ) -> None:
        self.known: dict[int, str | None] = dict(customers or {})  # fusebillId -> geotabId
        self.list_mode = list_mode
        self.list_page_size = list_page_size  # None: a page holds every id asked for
        if list_headers not in ("index", "docs", "none"):
            raise ValueError(f"list_headers is index, docs or none, not {list_headers!r}")
        self.list_headers = list_headers
        self._list_scripts: deque[Reply] = deque()
        self.key = key
        self.show_geotab = show_geotab
        self.max_calls = max_calls
        self.on_call = on_call
        self.calls: list[Call] = []
        self.closed = False
        self._scripts: dict[tuple[str, int], deque[Script]] = {}
        self._always: dict[str, Callable[[int], Reply]] = {}
        self._lock = threading.Lock()

    # --- scripting -------------------------------------------------------------------------

    def script(self, method: Method, fusebill_id: int, *answers: Script) -> FakeFusebill:
        """Answer the next requests of ``method`` for ``fusebill_id`` with ``answers``, in
        order; after them, the default behaviour again."""
        with self._lock:
            self._scripts.setdefault((method, fusebill_id), deque()).extend(answers)
        return self

    def script_list(self, *answers: Reply) -> FakeFusebill:
        """Answer the next list requests with ``answers``, in order, whatever they ask."""
        with self._lock:
            self._list_scripts.extend(answers)
        return self

    def always(self, method: Method, answer: Callable[[int], Reply]) -> FakeFusebill:
        """Every request of ``method`` (not scripted otherwise) gets ``answer(fusebillId)``."""
        with self._lock:
            self._always[method] = answer
        return self

    # --- what the runner calls -------------------------------------------------------------

    def latch(self, fusebill_id: int, geotab_id: str) -> Reply:
        return self._call("latch", fusebill_id, geotab_id)

    def unlatch(self, fusebill_id: int) -> Reply:
        return self._call("unlatch", fusebill_id, None)

    def customer(self, fusebill_id: int) -> Reply:
        return self._call("customer", fusebill_id, None)

    def customers(self, ids: Sequence[int], page: int = 0) -> Reply:
        asked = tuple(ids)
        call = Call("customers", asked[0] if asked else 0, None, time.monotonic(), asked, page)
        with self._lock:
            self._record(call)
            scripted = self._list_scripts.popleft() if self._list_scripts else None
            reply = scripted or self._list(asked, page)
        if self.on_call is not None:
            self.on_call(call)
        return reply

    def redact(self, text: str) -> str:
        return text.replace(self.key, REDACTED) if self.key else text

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    # --- what tests look at ----------------------------------------------------------------

    def methods(self, fusebill_id: int | None = None) -> list[str]:
        with self._lock:
            return [
                c.method
                for c in self.calls
                if fusebill_id is None or fusebill_id == c.fusebill_id or fusebill_id in c.ids
            ]

    def count(self, method: Method) -> int:
        return self.methods().count(method)

    def held(self, fusebill_id: int) -> str | None:
        with self._lock:
            return self.known.get(fusebill_id)

    # --- inside ----------------------------------------------------------------------------

    def _call(self, method: Method, fusebill_id: int, geotab_id: str | None) -> Reply:
        call = Call(method, fusebill_id, geotab_id, time.monotonic())
        with self._lock:
            self._record(call)
            queue = self._scripts.get((method, fusebill_id))
            scripted = queue.popleft() if queue else None
            if scripted is None and method in self._always:
                reply = self._always[method](fusebill_id)
            elif isinstance(scripted, Reply):
                reply = scripted
            else:
                answer = self._default(method, fusebill_id, geotab_id)
                reply = scripted.reply if isinstance(scripted, Landed) else answer
        if self.on_call is not None:
            self.on_call(call)
        return reply

    def _record(self, call: Call) -> None:
        if len(self.calls) >= self.max_calls:
            raise AssertionError(f"over {self.max_calls} requests: an endless loop?")
        self.calls.append(call)

    def _list(self, asked: tuple[int, ...], page: int) -> Reply:
        """One page of the list as :attr:`list_mode` says; the lock is held."""
        mode = self.list_mode
        if mode is ListMode.HTML:
            return html(200, "Sign in")
        if mode is ListMode.NOT_FOUND:
            return error(404, "Resource not found")
        known = sorted(self.known)
        chosen = sorted(i for i in set(asked) if i in self.known)
        if mode is ListMode.IGNORES_FILTER:
            chosen = known
        elif mode is ListMode.MISSING:
            chosen = chosen[::2]
        elif mode is ListMode.UNASKED:
            other = next((i for i in known if i not in asked), max([*known, *asked, 0]) + 1)
            chosen = sorted([*chosen, other])
        size = self.list_page_size or max(len(asked), 1)
        shown = chosen[page * size : (page + 1) * size]
        show = self.show_geotab and mode is not ListMode.NO_GEOTAB
        body = [customer_object(i, self.known.get(i), show=show).body for i in shown]
        headers = {"content-type": "application/json"}
        pages = math.ceil(len(chosen) / size)
        if self.list_headers != "none":
            docs = self.list_headers == "docs"
            headers |= {
                "x-maxpageindex": str(pages if docs else max(pages - 1, 0)),
                "x-currentpage": str(page),
                "x-pagesize": str(size),
                "x-count": str(len(chosen) if docs else len(shown)),
                "x-maxcount": str(len(chosen)),
            }
        return Reply(200, body, headers)

    def _default(self, method: Method, fusebill_id: int, geotab_id: str | None) -> Reply:
        if fusebill_id not in self.known:
            return not_found(fusebill_id)
        if method == "latch":
            self.known[fusebill_id] = geotab_id
        elif method == "unlatch":
            self.known[fusebill_id] = None
        shown = self.show_geotab or method != "customer"
        return customer_object(fusebill_id, self.known[fusebill_id], show=shown)


# --- a disk that is full ---------------------------------------------------------------------


class FullDisk(io.BufferedWriter):
    """A file handle whose writes fail the way a full disk does (hand it to ``Checkpoint``)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO())

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


# --- waiting on a condition ------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], *, deadline: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline} s waiting for {what or condition}")
        time.sleep(0.005)


def pairs(calls: Iterable[Call]) -> list[tuple[str, int]]:
    return [(c.method, c.fusebill_id) for c in calls]
