"""The customer list through ``Api.handle``, no sockets: filter, order, paging, the modes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from batch_latch.sandbox import (
    DEFAULT_API_KEY,
    EXTRA_CUSTOMER_IDS,
    KNOWN_ID_MAX,
    KNOWN_ID_MIN,
    MAX_PAGE_SIZE,
    PAGING_HEADERS,
    Answer,
    Api,
    CustomerList,
    Request,
    SandboxConfig,
)
from batch_latch.sandbox.listing import KNOWN_COUNT, known_id_at

from .helpers import LONG, RATE_HEADERS

AUTH = f"Basic {DEFAULT_API_KEY}"


def api(**options: Any) -> Api:
    """The paging tests below read X-MaxPageIndex as the last page's index (``index``); the
    default ``docs`` and ``none`` have tests of their own."""
    options.setdefault("minute_seconds", LONG)
    options.setdefault("list_headers", "index")
    return Api(SandboxConfig(**options))


def listing(a: Api, query: str, path: str = "/v1/customers", auth: str | None = AUTH) -> Answer:
    return a.handle(Request("GET", path, b"", auth, query))


def ids_query(*ids: int, **params: Any) -> str:
    return urlencode({"query": "id:" + ",".join(str(i) for i in ids), **params})


def paging(answer: Answer) -> dict[str, str | None]:
    return {name: answer.header(name) for name in PAGING_HEADERS}


def page_headers(last: int, k: int, size: int, count: int, total: int, nxt: str, prev: str) -> Any:
    values = (str(last), str(k), str(size), str(count), str(total), nxt, prev)
    return dict(zip(PAGING_HEADERS, values))


def ids_of(answer: Answer) -> list[int]:
    body = answer.json()
    assert isinstance(body, list)
    return [item["id"] for item in body]


def error_value(answer: Answer, status: int) -> str:
    body = answer.json()
    assert answer.status == status
    assert (body["ErrorId"], body["HttpStatusCode"]) == (0, status)
    assert [e["Key"] for e in body["Errors"]] == ["Api Error"]
    return str(body["Errors"][0]["Value"])


# --- full: the customers of the set ---------------------------------------------------------


def test_full_lists_the_known_customers_of_the_set_in_id_order() -> None:
    a = api(preset={1_000_002: "G2"})
    answer = listing(a, ids_query(1_000_003, 55, 1_000_002, 12_717_595, 1_000_002, 671_201))
    assert answer.status == 200
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    assert ids_of(answer) == [671_201, 1_000_002, 1_000_003, 12_717_595]  # 55 is unknown
    assert [item["geotabId"] for item in answer.json()] == [None, "G2", None, None]
    assert paging(answer) == page_headers(0, 0, 20, 4, 4, "", "")
    assert answer.listed == 4 and answer.fusebill_id is None


def test_full_objects_are_exactly_what_a_single_read_answers() -> None:
    a = api(preset={1_000_001: "G1"})
    listed = listing(a, ids_query(1_000_001, 1_000_002)).json()
    reads = [Request("GET", f"/v1/customers/{fid}", b"", AUTH) for fid in (1_000_001, 1_000_002)]
    singles = [a.handle(read).json() for read in reads]
    assert listed == singles
    assert all("geotabId" in item for item in listed)


def test_full_shows_latches_made_since_the_start() -> None:
    a = api()
    latch = b'{"fusebillId": 1000005, "geotabId": "NEW"}'
    assert a.handle(Request("POST", "/v1/Geotab/LatchCustomer", latch, AUTH)).status == 200
    assert listing(a, ids_query(1_000_005)).json()[0]["geotabId"] == "NEW"


def test_hide_geotab_id_applies_to_the_list_too() -> None:
    a = api(hide_geotab_id=True, preset={1_000_001: "G1"})
    listed = listing(a, ids_query(1_000_001)).json()
    assert "geotabId" not in listed[0]
    assert listed == [a.handle(Request("GET", "/v1/customers/1000001", b"", AUTH)).json()]


def test_names_match_ignoring_case_and_the_path_a_trailing_slash() -> None:
    a = api()
    answer = listing(a, "QUERY=ID:1000002,1000001&PAGESIZE=1&pagenumber=1", "/V1/Customers/")
    assert answer.status == 200
    assert ids_of(answer) == [1_000_002]
    assert paging(answer) == page_headers(1, 1, 1, 1, 2, "", "0")


def test_spaces_around_ids_and_encoded_separators_are_understood() -> None:
    a = api()
    assert ids_of(listing(a, "query=id%3A1000002%2C%201000001")) == [1_000_001, 1_000_002]
    assert ids_of(listing(a, "query=id:+1000003+,1000004")) == [1_000_003, 1_000_004]


# --- paging ---------------------------------------------------------------------------------

FIVE = (1_000_005, 1_000_001, 1_000_004, 1_000_002, 1_000_003)


@pytest.mark.parametrize(
    ("page", "ids", "headers"),
    [
        (0, [1_000_001, 1_000_002], page_headers(2, 0, 2, 2, 5, "1", "")),
        (1, [1_000_003, 1_000_004], page_headers(2, 1, 2, 2, 5, "2", "0")),
        (2, [1_000_005], page_headers(2, 2, 2, 1, 5, "", "1")),  # the last page
        (3, [], page_headers(2, 3, 2, 0, 5, "", "2")),  # past the end: points at the last
        (2**31 - 1, [], page_headers(2, 2**31 - 1, 2, 0, 5, "", "2")),
    ],
)
def test_pages_of_two(page: int, ids: list[int], headers: dict[str, str]) -> None:
    answer = listing(api(), ids_query(*FIVE, pageSize=2, pageNumber=page))
    assert answer.status == 200
    assert ids_of(answer) == ids
    assert paging(answer) == headers


def test_following_next_page_reads_every_customer_once() -> None:
    a = api()
    asked = [1_000_000 + 7 * i for i in range(1, 24)] + [42, 43]
    seen: list[int] = []
    page: str | None = "0"
    while page:
        answer = listing(a, ids_query(*asked, pageSize=5, pageNumber=page))
        seen += ids_of(answer)
        assert answer.header("X-MaxPageIndex") == "4"
        page = answer.header("X-NextPage")
    assert seen == sorted(asked[:23])


def test_a_page_that_fits_exactly_has_no_next_page() -> None:
    answer = listing(api(), ids_query(*FIVE, pageSize=5))
    assert paging(answer) == page_headers(0, 0, 5, 5, 5, "", "")


def test_no_known_customer_is_an_empty_page_zero() -> None:
    answer = listing(api(), ids_query(1, 2, 999_999, 10_000_000, pageSize=100))
    assert answer.status == 200
    assert answer.json() == []
    assert paging(answer) == page_headers(0, 0, 100, 0, 0, "", "")


def test_a_page_of_a_thousand() -> None:
    asked = range(KNOWN_ID_MIN, KNOWN_ID_MIN + 1500)
    answer = listing(api(), ids_query(*asked, pageSize=MAX_PAGE_SIZE, pageNumber=1))
    assert ids_of(answer) == list(range(KNOWN_ID_MIN + 1000, KNOWN_ID_MIN + 1500))
    assert paging(answer) == page_headers(1, 1, 1000, 500, 1500, "", "0")


# --- the readings of the paging headers ----------------------------------------------------


def test_the_default_reading_is_fusebills_page_taken_literally() -> None:
    a = Api(SandboxConfig(minute_seconds=LONG))
    answer = listing(a, ids_query(*FIVE, pageSize=2))
    # X-MaxPageIndex: "Total number of pages"; X-Count: "the total number of results"
    assert paging(answer) == page_headers(3, 0, 2, 5, 5, "1", "")


@pytest.mark.parametrize(
    ("page", "ids", "headers"),
    [
        (0, [1_000_001, 1_000_002], page_headers(3, 0, 2, 5, 5, "1", "")),
        (1, [1_000_003, 1_000_004], page_headers(3, 1, 2, 5, 5, "2", "0")),
        (2, [1_000_005], page_headers(3, 2, 2, 5, 5, "", "1")),
        (3, [], page_headers(3, 3, 2, 5, 5, "", "2")),
    ],
)
def test_docs_pages_of_two(page: int, ids: list[int], headers: dict[str, str]) -> None:
    answer = listing(api(list_headers="docs"), ids_query(*FIVE, pageSize=2, pageNumber=page))
    assert ids_of(answer) == ids
    assert paging(answer) == headers


def test_docs_a_page_that_fits_exactly_is_one_page_in_all() -> None:
    answer = listing(api(list_headers="docs"), ids_query(*FIVE, pageSize=5))
    assert paging(answer) == page_headers(1, 0, 5, 5, 5, "", "")


def test_docs_no_known_customer_is_no_page_at_all() -> None:
    answer = listing(api(list_headers="docs"), ids_query(1, 2, pageSize=100))
    assert answer.json() == []
    assert paging(answer) == page_headers(0, 0, 100, 0, 0, "", "")


@pytest.mark.parametrize("page", [0, 1, 2, 3])
def test_none_writes_no_paging_header_and_the_same_objects(page: int) -> None:
    query = ids_query(*FIVE, pageSize=2, pageNumber=page)
    answer = listing(api(list_headers="none"), query)
    assert paging(answer) == dict.fromkeys(PAGING_HEADERS)
    assert answer.json() == listing(api(list_headers="docs"), query).json()
    assert all(answer.header(name) is not None for name in RATE_HEADERS)


def test_an_unknown_reading_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="list_headers must be one of docs, index, none"):
        SandboxConfig(list_headers="total")  # type: ignore[arg-type]


# --- what it cannot parse: 400 in Fusebill's format -----------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ids_query(1_000_001, pageSize=1001), "pageSize must be a whole number from 1 to 1000"),
        (ids_query(1_000_001, pageSize=0), "pageSize"),
        (ids_query(1_000_001, pageSize=-1), "pageSize"),
        (ids_query(1_000_001, pageSize="ten"), "pageSize"),
        (ids_query(1_000_001, pageNumber=-1), "pageNumber"),
        (ids_query(1_000_001, pageNumber=2**31), "pageNumber"),
        ("query=id:1000001,x", "'x' is not a customer id"),
        ("query=id:1000001,,1000002", "'' is not a customer id"),
        ("query=id:", "'' is not a customer id"),
        ("query=id:0", "'0' is not a customer id"),
        ("query=id:1.5", "not a customer id"),
        ("query=name:foo", "filters customers on id only"),
        ("query=1000001", "filters customers on id only"),
        ("query=", "filters customers on id only"),
        ("query=id:1000001&query=id:1000002", "more than once"),
        ("query=id:1000001&pagesize=1&pageSize=2", "more than once"),
    ],
)
def test_what_it_cannot_parse_is_a_fusebill_400(query: str, expected: str) -> None:
    a = api()
    answer = listing(a, query)
    assert expected in error_value(answer, 400)
    assert all(answer.header(name) is not None for name in RATE_HEADERS)
    assert answer.header("X-MaxPageIndex") is None


@pytest.mark.parametrize("style", ["index", "docs", "none"])
def test_a_list_without_query_pages_through_every_customer_in_id_order(style: str) -> None:
    a = api(preset={1_000_001: "G1"}, list_headers=style)
    first = listing(a, "pageSize=3")
    assert ids_of(first) == [671_201, 1_000_000, 1_000_001]
    assert [item["geotabId"] for item in first.json()] == [None, None, "G1"]
    assert ids_of(listing(a, "pageSize=3&pageNumber=1")) == [1_000_002, 1_000_003, 1_000_004]
    assert len(ids_of(listing(a, ""))) == 20  # Fusebill's default page size
    assert first.header("X-CurrentPage") == (None if style == "none" else "0")


def test_other_methods_on_the_list_path_are_still_resource_not_found() -> None:
    answer = api().handle(Request("POST", "/v1/customers", b"{}", AUTH, "query=id:1000001"))
    assert error_value(answer, 404) == "Resource not found"


# --- ignores-filter: every known customer ---------------------------------------------------


def test_known_id_at_walks_every_known_customer_in_order() -> None:
    assert KNOWN_COUNT == 9_000_002 == KNOWN_ID_MAX - KNOWN_ID_MIN + 1 + len(EXTRA_CUSTOMER_IDS)
    ends = [known_id_at(i) for i in (0, 1, 2, KNOWN_COUNT - 2, KNOWN_COUNT - 1)]
    assert ends == [671_201, KNOWN_ID_MIN, KNOWN_ID_MIN + 1, KNOWN_ID_MAX, 12_717_595]
    for bad in (-1, KNOWN_COUNT):
        with pytest.raises(IndexError):
            known_id_at(bad)


@pytest.mark.parametrize(
    "query",
    [
        ids_query(12_717_595, 1_000_007, pageSize=3),
        "query=name:foo&pageSize=3",
        "pageSize=3",
    ],
)
def test_ignores_filter_pages_through_everyone_whatever_the_query(query: str) -> None:
    a = api(customer_list=CustomerList.IGNORES_FILTER, preset={1_000_000: "P"})
    answer = listing(a, query)
    assert answer.status == 200
    assert ids_of(answer) == [671_201, 1_000_000, 1_000_001]
    assert [item["geotabId"] for item in answer.json()] == [None, "P", None]
    last = str((KNOWN_COUNT + 2) // 3 - 1)
    assert paging(answer) == page_headers(int(last), 0, 3, 3, KNOWN_COUNT, "1", "")


def test_ignores_filter_last_page_and_page_size() -> None:
    a = api(customer_list=CustomerList.IGNORES_FILTER)
    last = (KNOWN_COUNT - 1) // 1000
    answer = listing(a, ids_query(1_000_001, pageSize=1000, pageNumber=last))
    assert ids_of(answer)[-2:] == [KNOWN_ID_MAX, 12_717_595]
    count = KNOWN_COUNT - 1000 * last
    assert paging(answer) == page_headers(last, last, 1000, count, KNOWN_COUNT, "", str(last - 1))
    assert listing(a, ids_query(1_000_001, pageSize=1001)).status == 400


# --- no-geotab and missing ------------------------------------------------------------------


def test_no_geotab_objects_carry_no_geotab_id_key_and_reads_still_do() -> None:
    a = api(customer_list=CustomerList.NO_GEOTAB, preset={1_000_001: "G1"})
    answer = listing(a, ids_query(1_000_002, 1_000_001, 77))
    assert ids_of(answer) == [1_000_001, 1_000_002]
    assert all("geotabId" not in item for item in answer.json())
    assert paging(answer) == page_headers(0, 0, 20, 2, 2, "", "")
    single = a.handle(Request("GET", "/v1/customers/1000001", b"", AUTH)).json()
    assert single["geotabId"] == "G1"
    assert answer.json()[0] == {k: v for k, v in single.items() if k != "geotabId"}


@pytest.mark.parametrize("query", [ids_query(1_000_001), "query=name:foo", ""])
def test_missing_is_aspnets_404_not_fusebills_format(query: str) -> None:
    a = api(customer_list="missing")  # names work too
    answer = listing(a, query)
    assert answer.status == 404
    body = answer.json()
    assert "ErrorId" not in body and "Errors" not in body
    assert body["Message"].startswith("No HTTP resource was found that matches the request URI")
    assert "/v1/customers" in body["Message"]
    assert answer.header("X-MaxPageIndex") is None
    assert all(answer.header(name) is not None for name in RATE_HEADERS)
    assert a.handle(Request("GET", "/v1/customers/1000001", b"", AUTH)).status == 200


def test_an_unknown_mode_name_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="customer_list must be one of full, ignores-filter"):
        SandboxConfig(customer_list="partial")  # type: ignore[arg-type]


# --- limits, key and faults: a list is one request ------------------------------------------


@pytest.mark.parametrize("mode", list(CustomerList))
def test_a_list_request_counts_once_against_the_limits(mode: CustomerList) -> None:
    a = api(profile="testdrive", customer_list=mode)
    asked = range(KNOWN_ID_MIN, KNOWN_ID_MIN + 500)
    remaining = [
        listing(a, ids_query(*asked, pageSize=500)).header("X-Rate-Limit-Remaining-Minute")
        for _ in range(10)
    ]
    assert remaining == [str(n) for n in range(9, -1, -1)]
    refused = listing(a, ids_query(*asked, pageSize=500))
    assert refused.status == 429
    assert refused.header("X-Rate-Limit-Remaining-Day") == "490"


def test_a_malformed_list_request_counts_once_too() -> None:
    a = api(profile="testdrive")
    assert listing(a, "query=name:foo").header("X-Rate-Limit-Remaining-Minute") == "9"


def test_the_list_needs_the_key() -> None:
    answer = listing(api(), ids_query(1_000_001), auth="Basic wrong")
    assert error_value(answer, 401) == "Invalid API key"


def test_fail_rate_applies_to_the_list() -> None:
    answer = listing(api(fail_rate=1.0, seed=1), ids_query(1_000_001))
    assert answer.status in (500, 502, 503)
    assert answer.header("X-MaxPageIndex") is None
