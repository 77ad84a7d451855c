"""A local stand-in for Fusebill's API, so rehearsals, tests and benchmarks mean something.

It stands alone (nothing else from ``batch_latch`` is imported) so that a test or a benchmark
exercises the client against an independent implementation of the contract, not against
shared code.

What it imitates:

* Base path ``/v1``: ``POST /v1/Geotab/LatchCustomer``, ``POST /v1/Geotab/UnlatchCustomer``,
  ``GET /v1/customers/{id}``; paths match ignoring case (as ASP.NET routing does). Anything
  else is a 404 in Fusebill's error format
  ``{"ErrorId":0,"HttpStatusCode":404,"Errors":[{"Key":"Api Error","Value":"..."}]}``.
* The customer list ``GET /v1/customers?query=id:1,2,3&pageSize=N&pageNumber=K`` (``listing``):
  the known customers of the set, in id order, each as ``GET /v1/customers/{id}`` shows it;
  without ``query``, every known customer in id order; ``pageSize`` 1..1,000 (default 20),
  ``pageNumber`` from 0; anything it cannot parse (``name:foo``, ``id:1,x``) is a 400 in
  Fusebill's error format. Paging headers as ``list_headers`` (``ListHeaders``) writes them:
  ``docs`` (default, Fusebill's page taken literally: ``X-MaxPageIndex`` the total of pages,
  ``X-Count`` the total of results), ``index`` (``X-MaxPageIndex`` the last page's index,
  ``X-Count`` this page's objects) or ``none``; ``X-MaxCount`` all that match, ``X-PageSize``,
  ``X-CurrentPage``, ``X-NextPage`` and ``X-PreviousPage`` page numbers, empty at the ends.
  One request against the limits, however many ids. ``customer_list`` (``CustomerList``)
  rehearses lists a client must not trust: ``IGNORES_FILTER`` pages through every known
  customer, ``NO_GEOTAB`` leaves the key out, ``MISSING`` answers ASP.NET's own 404
  ``{"Message": "No HTTP resource was found..."}``.
* Customer objects are shaped like a live answer: a top-level ``geotabId`` (``null`` when
  none), ``hubSpotId``, ``hubSpotCompanyId``, ``digitalRiverId``, ``isParent``,
  ``canChangeCurrency``, timestamps with seven fractional digits and ``Z``, and an absolute
  ``uri`` (``{base}/customers/{id}``).
* Known customers: every id from ``KNOWN_ID_MIN`` (1,000,000) to ``KNOWN_ID_MAX`` (9,999,999)
  inclusive, plus ``EXTRA_CUSTOMER_IDS`` (12717595 and 671201, the ids in Fusebill's own
  example). Every other id gets 404. Nobody is latched at start but the ``preset``'s
  customers; ``hide_geotab_id`` leaves the key out of customer reads.
* It listens on loopback only (``host`` anything else is refused).
* ``Authorization`` must be exactly ``"Basic " + api_key`` (default ``DEFAULT_API_KEY``, the
  sandbox's own key, never a real one), else 401.
* Limits per ``PROFILES`` (live 1,000/180,000, sandbox 50/5,000, testdrive 10/500 requests a
  minute/day), counted after authentication; minute windows are aligned to the wall clock,
  the day is the UTC day; ``rate_limit`` replaces the minute window by a token bucket.
  Requests answered 429 use up nothing. Every answer from "Fusebill" carries
  ``X-Rate-Limit-*`` headers (a middlebox's page does not).
* Faults for rehearsals: latency, random 5xx (nothing applied), dropped connections (applied,
  then no answer), a stalled first answer per customer (applied, answered late), a non-200
  answer on a repeated latch, a mismatching geotabId, forced statuses for chosen ids; and a
  misbehaving network: TLS, captive-portal HTML 200s, empty 200s, applied-then-504, dripping
  bodies, redirects, ``Retry-After`` values.

Unlike Fusebill's JSON parser, which accepts the unquoted keys of its own curl example, bodies
must be strict JSON with an integer ``fusebillId`` and a string ``geotabId``: the sandbox is
there to catch a client sending the wrong types. Unknown fields are ignored.

Layout: ``config`` (the knobs), ``customers`` and ``preset`` (state), ``limits``, ``routes``
(request to answer, no sockets), ``listing`` (the customer list), ``server`` (the wire),
``app`` (``Sandbox``), ``cli``.
"""

from __future__ import annotations

from .app import Sandbox
from .cli import config_from_args, configure_parser, serve
from .config import DEFAULT_API_KEY, DEFAULT_PORT, PROFILES, Limits, SandboxConfig
from .customers import EXTRA_CUSTOMER_IDS, KNOWN_ID_MAX, KNOWN_ID_MIN, is_known_customer
from .limits import format_reset
from .listing import LIST_PATH, MAX_PAGE_SIZE, PAGING_HEADERS, CustomerList, ListHeaders
from .log import LoggedRequest
from .preset import PresetError, load_preset
from .routes import Answer, Api, Request

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "EXTRA_CUSTOMER_IDS",
    "KNOWN_ID_MAX",
    "KNOWN_ID_MIN",
    "LIST_PATH",
    "MAX_PAGE_SIZE",
    "PAGING_HEADERS",
    "PROFILES",
    "Answer",
    "Api",
    "CustomerList",
    "Limits",
    "ListHeaders",
    "LoggedRequest",
    "PresetError",
    "Request",
    "Sandbox",
    "SandboxConfig",
    "config_from_args",
    "configure_parser",
    "format_reset",
    "is_known_customer",
    "load_preset",
    "serve",
]
