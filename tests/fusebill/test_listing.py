"""A customer-list answer, trusted customer by customer (contract v3 "Reading many customers
at once"): each bullet of the trust list against hand-written answers, then the pages, the
URL and the batches. Pure: no HTTP."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_latch.fusebill.answers import Holding, Meaning, Reply, ReplyError, classify_read
from batch_latch.fusebill.listing import (
    MAX_URL,
    ListAnswer,
    batches,
    classify_list,
    list_url,
    page_size,
)
from batch_latch.fusebill.service import FusebillService
from batch_latch.vocab import StopReason
from tests.doubles import FakeFusebill, ListMode

BASE = "https://secure.fusebill.test/v1"
ASKED = (101, 102, 103)
HTML = "<html><head><title>Sign in</title></head><body>portal</body></html>"


def obj(fid: object, geotab_id: object = ..., **more: object) -> dict[str, object]:
    """A trimmed customer-list object; ``geotab_id`` left out means no ``geotabId`` key."""
    body: dict[str, object] = {"firstName": "Ada", "id": fid, "uri": f"/customers/{fid}", **more}
    if geotab_id is not ...:
        body["geotabId"] = geotab_id
    return body


def answer(
    status: int | None, body: object = None, error: str | None = None, **headers: str
) -> Reply:
    names = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    url = list_url(BASE, ASKED)
    reason = None if error is None else ReplyError(error)
    return Reply(status, body, names, error=reason, detail="detail", url=url)


def listed(*objects: object, page: int = 0, **headers: str) -> ListAnswer:
    return classify_list(answer(200, list(objects), **headers), ASKED, page)


def assert_untrusted(got: ListAnswer, *said: str) -> None:
    """Nothing in the answer is used; every asked id is read alone; not a stop."""
    assert got.untrusted is not None and got.notice is not None
    assert (got.verdict.kind, got.verdict.error_key, got.verdict.stop) == (
        Meaning.REJECTED,
        "list_untrusted",
        None,
    )
    assert dict(got.holdings) == {} and got.read_alone == ASKED
    assert got.answered and got.one_by_one and got.next_page is None
    assert "\n" not in got.notice and "one by one" in got.notice
    for words in said:
        assert words in got.untrusted


# --- the trust list, bullet by bullet --------------------------------------------------------


def test_an_asked_integer_id_with_a_geotab_id_key_is_that_customers_read() -> None:
    got = listed(obj(101, "G-1"), obj(102, "G-2"), obj(103, "0909909"))
    assert got.verdict.kind is Meaning.SUCCESS and got.untrusted is None
    assert dict(got.holdings) == {101: Holding("G-1"), 102: Holding("G-2"), 103: Holding("0909909")}
    assert got.read_alone == () and not got.one_by_one and got.notice is None


@pytest.mark.parametrize("held", [None, ""])
def test_a_null_or_empty_geotab_id_holds_none(held: str | None) -> None:
    got = listed(obj(101, held), obj(102, "G-2"), obj(103, held))
    assert got.holdings[101] == Holding(None) == got.holdings[103]
    assert got.holdings[101].known  # known to hold none: not the "cannot check" reading


def test_a_list_read_is_what_a_one_by_one_read_of_the_same_object_finds() -> None:
    objects = {101: obj(101, "G-1"), 102: obj(102, None), 103: obj(103, 7)}  # 7: as a read
    got = listed(*objects.values())
    for fid, item in objects.items():
        assert got.holdings[fid] == classify_read(Reply(200, item), fid)[1]


def test_an_asked_id_absent_from_the_answer_is_read_alone_and_not_not_found() -> None:
    got = listed(obj(102, "G-2"))
    assert got.verdict.kind is Meaning.SUCCESS and got.untrusted is None
    assert dict(got.holdings) == {102: Holding("G-2")}
    assert got.read_alone == (101, 103)  # in the order asked
    assert not got.one_by_one


def test_an_empty_array_reads_every_asked_id_alone_and_is_not_untrusted() -> None:
    got = listed()
    assert (got.verdict.kind, got.untrusted, got.no_geotab_anywhere) == (
        Meaning.SUCCESS,
        None,
        False,
    )
    assert dict(got.holdings) == {} and got.read_alone == ASKED


def test_an_object_without_a_geotab_id_key_is_read_alone() -> None:
    got = listed(obj(101, "G-1"), obj(102), obj(103, None))
    assert dict(got.holdings) == {101: Holding("G-1"), 103: Holding(None)}
    assert got.read_alone == (102,)
    assert not got.no_geotab_anywhere and not got.one_by_one


def test_no_object_with_the_key_turns_the_rest_of_the_command_to_one_by_one() -> None:
    got = listed(obj(101), obj(103))
    assert got.verdict.kind is Meaning.SUCCESS and got.untrusted is None
    assert got.no_geotab_anywhere and got.one_by_one
    assert dict(got.holdings) == {} and got.read_alone == ASKED
    assert got.notice is not None and "shows no geotabId" in got.notice


def test_an_unasked_id_among_asked_ones_makes_the_whole_answer_untrusted() -> None:
    got = listed(obj(101, "G-1"), obj(102, None), obj(999, "G-9"), obj(103, None))
    assert_untrusted(got, "customer 999", "not asked for")


def test_an_answer_that_ignores_the_filter_is_untrusted() -> None:
    got = listed(*(obj(n, None) for n in range(1, 4)))  # the account's first three customers
    assert_untrusted(got, "customer 1,")


@pytest.mark.parametrize(
    ("item", "said"),
    [
        (obj("101", "G-1"), "'101'"),
        (obj(True, "G-1"), "True"),
        (obj(101.0, "G-1"), "101.0"),
        (obj(None, "G-1"), "None"),
        ({"geotabId": "G-1"}, "has no id"),
        ("101", "not an object"),
        (101, "not an object"),
        ([101, "G-1"], "not an object"),
    ],
    ids=["id-string", "id-true", "id-float", "id-null", "no-id", "string", "int", "array"],
)  # fmt: skip
def test_an_array_item_without_an_integer_id_makes_the_whole_answer_untrusted(
    item: object, said: str
) -> None:
    assert_untrusted(listed(obj(102, "G-2"), item), said)  # the good object is not used


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (HTML, "HTML page ('Sign in')"),
        ('[{"id": 101, "geotabId": "G-1"', "text that is not JSON"),
        ({"id": 101, "geotabId": "G-1"}, "JSON object (keys: id, geotabId)"),
        ({"data": [obj(101, "G-1")], "total": 1}, "keys: data, total"),
        ("", "an empty body"),
        (None, "an empty body"),
        (101, "not an object (int)"),
    ],
    ids=["html", "invalid-json", "one-object", "wrapped", "empty", "none", "number"],
)  # fmt: skip
def test_an_answer_that_is_not_a_json_array_is_untrusted(body: object, said: str) -> None:
    assert_untrusted(classify_list(answer(200, body), ASKED, 0), said)


FUSEBILL_404 = {
    "ErrorId": 0,
    "HttpStatusCode": 404,
    "Errors": [{"Key": "Api Error", "Value": "Customer with id 101 not found."}],
}


@pytest.mark.parametrize(
    "reply",
    [
        answer(400, {"ErrorId": 0, "HttpStatusCode": 400, "Errors": [{"Value": "bad query"}]}),
        answer(404, FUSEBILL_404),  # a Fusebill 404 to the list is not a customer not found
        answer(404, HTML),  # nor is a server's 404 a wrong URL: only a one-by-one read says that
        answer(405, {"Message": "The requested resource does not support GET"}),
        answer(414, "URI Too Long"),
        answer(404, None, error="too_large"),
    ],
    ids=["400", "404-fusebill", "404-html", "405", "414", "404-too-large"],
)
def test_a_400_404_405_or_414_means_the_list_is_not_trusted(reply: Reply) -> None:
    got = classify_list(reply, ASKED, 0)
    assert_untrusted(got, f"HTTP {reply.status}")
    assert (
        got.verdict.kind is not Meaning.NOT_FOUND and got.verdict.stop is not StopReason.WRONG_URL
    )


@pytest.mark.parametrize("status", [410, 413, 422, 431, 103])
def test_another_refusal_or_an_interim_answer_is_not_trusted_either(status: int) -> None:
    assert_untrusted(classify_list(answer(status, {"Message": "no"}), ASKED, 0), f"HTTP {status}")


def test_a_full_page_that_leaves_ids_unanswered_asks_for_the_next_page() -> None:
    assert listed(obj(101, None), x_pagesize="1").next_page == 1
    assert listed(obj(101, None), obj(102, None), x_pagesize="2").next_page == 1
    assert listed(obj(102, None), page=1, x_pagesize="1").next_page == 2


def test_a_page_short_of_the_page_size_in_effect_is_the_last() -> None:
    assert listed(obj(101, None), x_pagesize="3").next_page is None
    assert listed(obj(101, None), obj(102, None), x_pagesize="3").next_page is None
    assert listed(x_pagesize="3").next_page is None


def test_every_id_answered_asks_for_no_more_pages() -> None:
    every = (obj(101, None), obj(102, "G-2"), obj(103, None))
    assert listed(*every, x_pagesize="3").next_page is None
    assert listed(*every).next_page is None
    assert listed(*every, x_pagesize="3", x_maxpageindex="2").next_page is None


def test_the_max_page_index_alone_never_asks_for_a_page_nor_ends_the_read() -> None:
    for value in ("0", "1", "2", "3", "99", "", "two"):
        assert listed(obj(101, None), x_pagesize="3", x_maxpageindex=value).next_page is None
        assert listed(obj(101, None), x_pagesize="1", x_maxpageindex=value).next_page == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"x_maxpageindex": "3"},  # four pages for three ids (read as an index)
        {"x_maxpageindex": "99", "x_count": "99", "x_maxcount": "1"},
        {"x_maxpageindex": "0", "x_count": "7", "x_pagesize": "1"},  # docs: no pages at all
        {"x_count": "3", "x_pagesize": "0"},
        {"x_currentpage": "5", "x_nextpage": "x", "x_previouspage": "-4"},
    ],
)
def test_a_paging_header_inconsistent_under_a_reading_never_makes_the_list_untrusted(
    headers: dict[str, str],
) -> None:
    got = classify_list(answer(200, [obj(101, "G-1")], **headers), ASKED, 0)
    assert got.untrusted is None and dict(got.holdings) == {101: Holding("G-1")}


def test_without_paging_headers_the_next_page_is_read_while_the_last_brought_ids() -> None:
    first = listed(obj(101, None))
    assert first.next_page == 1  # the page size in effect is unknown: maybe capped at 1
    assert first.then(listed(page=1)).next_page is None  # an empty page: the end
    assert first.then(listed(obj(102, None), page=1)).next_page == 2
    assert first.then(listed(obj(101, None), page=1)).next_page is None  # nothing new


@pytest.mark.parametrize("odd", ["", "0", "-1", "two", "1.5", "²"])
def test_an_unreadable_page_size_is_an_unknown_one(odd: str) -> None:
    assert listed(obj(101, None), x_pagesize=odd).next_page == 1
    assert listed(x_pagesize=odd).next_page is None


def test_no_page_past_as_many_as_the_ids_asked_is_read() -> None:
    # three ids fill three pages (0, 1, 2) at most, and the batch's URLs are cut for that
    assert listed(obj(103, None), page=2, x_pagesize="1").next_page is None
    assert listed(obj(103, None), page=2).next_page is None


AS_FOR_ANY_REQUEST = [
    ("429", answer(429, {"Message": "Rate limit exceeded"}), Meaning.RATE_LIMITED, None),
    ("401", answer(401, {"Message": "no"}), Meaning.KEY_REJECTED, None),
    ("403", answer(403, HTML), Meaning.KEY_REJECTED, None),
    ("302", answer(302, "", location="https://x.test/"), Meaning.STOP, StopReason.REDIRECT),
    ("304", answer(304, ""), Meaning.STOP, StopReason.REDIRECT),
    ("tls", answer(None, error="tls"), Meaning.STOP, StopReason.TLS),
    ("proxy", answer(None, error="proxy"), Meaning.STOP, StopReason.PROXY),
    ("407", answer(407, ""), Meaning.STOP, StopReason.PROXY),
    ("408", answer(408, ""), Meaning.RETRYABLE, None),
    ("409", answer(409, ""), Meaning.RETRYABLE, None),
    ("500", answer(500, {"Message": "oops"}), Meaning.RETRYABLE, None),
    ("502-too-large", answer(502, None, error="too_large"), Meaning.RETRYABLE, None),
    ("timeout", answer(None, error="timeout"), Meaning.RETRYABLE, None),
    ("connection", answer(None, error="connection"), Meaning.RETRYABLE, None),
]


@pytest.mark.parametrize(
    ("reply", "kind", "stop"),
    [row[1:] for row in AS_FOR_ANY_REQUEST],
    ids=[row[0] for row in AS_FOR_ANY_REQUEST],
)
def test_429_key_redirect_tls_proxy_5xx_timeout_and_connection_are_as_for_any_request(
    reply: Reply, kind: Meaning, stop: StopReason | None
) -> None:
    got = classify_list(reply, ASKED, 0)
    one = classify_read(reply, 101)[0]
    assert (got.verdict.kind, got.verdict.stop) == (kind, stop)
    assert (got.verdict.error_key, got.verdict.ambiguous) == (one.error_key, one.ambiguous)
    assert dict(got.holdings) == {} and got.untrusted is None and not got.answered


def test_an_oversized_2xx_is_not_read_like_any_oversized_answer() -> None:
    detail = "answer of 9000000 bytes over the 8 MiB cap: not read further"
    got = classify_list(Reply(200, None, error=ReplyError.TOO_LARGE, detail=detail), ASKED, 0)
    assert (got.verdict.kind, got.verdict.error_key) == (Meaning.RETRYABLE, "unreadable")
    assert detail in got.verdict.message and not got.answered


# --- odd objects of asked customers ----------------------------------------------------------


def test_a_customer_shown_twice_is_read_alone() -> None:
    got = listed(obj(101, "G-1"), obj(102, None), obj(101, "G-OTHER"))
    assert dict(got.holdings) == {102: Holding(None)}
    assert got.read_alone == (101, 103)


def test_a_customer_shown_twice_alike_is_still_read_alone() -> None:
    got = listed(obj(101, "G-1"), obj(101, "G-1"))
    assert 101 not in got.holdings and 101 in got.read_alone


@pytest.mark.parametrize("held", [True, 1.5, {"value": "G"}, ["G-1"]])
def test_a_geotab_id_that_is_not_text_is_read_alone(held: object) -> None:
    got = listed(obj(101, held), obj(102, "G-2"))
    assert dict(got.holdings) == {102: Holding("G-2")}
    assert got.read_alone == (101, 103) and got.untrusted is None


def test_ids_asked_twice_count_once() -> None:
    got = classify_list(answer(200, [obj(101, "G-1")]), [101, 101, 102], 0)
    assert got.asked == (101, 102) and got.read_alone == (102,)


def test_every_message_is_one_line() -> None:
    odd = "<html>\n<title>Down\nfor maintenance</title>\n" + "x" * 500
    got = classify_list(answer(200, odd), ASKED, 0)
    assert got.notice is not None and "\n" not in got.notice and len(got.notice) < 300


# --- pages -----------------------------------------------------------------------------------


def test_pages_together_read_what_each_page_showed() -> None:
    first = listed(obj(101, "G-1"), obj(102), x_pagesize="2")
    assert first.next_page == 1
    both = first.then(listed(obj(103, None), page=1, x_pagesize="2"))
    assert dict(both.holdings) == {101: Holding("G-1"), 103: Holding(None)}
    assert both.read_alone == (102,)  # shown without the key on page 0
    assert both.next_page is None and not both.no_geotab_anywhere
    assert both.shown == frozenset(ASKED)


def test_a_customer_on_two_pages_with_two_readings_is_read_alone() -> None:
    first = listed(obj(101, "G-1"), obj(102, None), x_maxpageindex="1")
    both = first.then(listed(obj(101, "G-CHANGED"), page=1, x_maxpageindex="1"))
    assert dict(both.holdings) == {102: Holding(None)}
    assert both.read_alone == (101, 103)


def test_an_untrusted_later_page_is_the_whole_answer() -> None:
    first = listed(obj(101, "G-1"), x_maxpageindex="1")
    both = first.then(listed(obj(999, "G-9"), page=1))
    assert_untrusted(both, "customer 999")


def test_a_later_page_that_did_not_answer_is_the_answer() -> None:
    first = listed(obj(101, "G-1"), x_maxpageindex="1")
    stop = classify_list(answer(401, {"Message": "no"}), ASKED, 1)
    assert first.then(stop) is stop


def test_no_geotab_anywhere_over_pages_counts_the_pages_with_objects() -> None:
    first = listed(obj(101), x_maxpageindex="1")
    assert first.then(listed(page=1)).no_geotab_anywhere
    assert not first.then(listed(obj(102, None), page=1)).no_geotab_anywhere


# --- the URL and the batches -----------------------------------------------------------------


def test_the_list_url_is_fusebills_set_filter_with_room_for_every_id() -> None:
    assert list_url(BASE + "/", [5, 17, 9], 2) == (
        f"{BASE}/customers?query=id:5,17,9&pageSize=3&pageNumber=2"
    )
    assert list_url(BASE, [7]) == f"{BASE}/customers?query=id:7&pageSize=1&pageNumber=0"
    assert page_size(1000) == 1000
    for wrong in (0, 1001):
        with pytest.raises(ValueError):
            page_size(wrong)


BIG = 9_223_372_036_854_775_807  # 19 digits


def longest(base: str, batch: list[int]) -> int:
    return max(len(list_url(base, batch, page)) for page in range(len(batch)))


def test_batches_of_19_digit_ids_stay_under_2000_characters() -> None:
    ids = [BIG - n for n in range(500)]
    cut = batches(BASE, ids, 100)
    assert [fid for batch in cut for fid in batch] == ids
    assert all(longest(BASE, batch) < MAX_URL for batch in cut)
    # 19 digits and a comma each: about 1,940 characters of ids fit, not 100 ids
    assert 90 <= len(cut[0]) < 100


def test_a_batch_fills_up_to_1999_characters_and_not_one_more() -> None:
    ids = [BIG - n for n in range(10)]
    exact = list_url(BASE, ids, 9)
    pad = MAX_URL - 1 - len(exact)
    base = f"{BASE[:8]}{'a' * pad}{BASE[8:]}"
    assert len(list_url(base, ids, 9)) == MAX_URL - 1
    assert batches(base, ids, 100) == [ids]  # 1,999 characters: one batch
    longer = f"{BASE[:8]}a{'a' * pad}{BASE[8:]}"
    assert batches(longer, ids, 100) == [ids[:9], ids[9:]]  # 2,000 would not be under


def test_a_page_number_with_more_digits_is_counted() -> None:
    # Eleven ids can be asked for on pages 0 to 10: room is kept for "10".
    ids = list(range(1, 12))
    base = BASE + "/" + "p" * (MAX_URL - 2 - len(list_url(BASE + "/", ids, 9)))
    assert len(list_url(base, ids, 9)) == MAX_URL - 1
    assert len(batches(base, ids, 100)) == 2


def test_a_base_url_too_long_for_one_id_is_refused() -> None:
    base = BASE + "/" + "x" * 1990
    with pytest.raises(ValueError, match="too long for list reads"):
        batches(base, [BIG], 100)
    assert batches(base, [], 100) == []


def test_batches_keep_read_batch_and_take_each_id_once() -> None:
    assert batches(BASE, [1, 2, 3, 2, 4, 5, 1], 2) == [[1, 2], [3, 4], [5]]
    assert batches(BASE, range(1, 4), 1) == [[1], [2], [3]]
    assert [len(b) for b in batches(BASE, range(1, 251), 100)] == [100, 100, 50]
    for wrong in (0, 1001):
        with pytest.raises(ValueError):
            batches(BASE, [1], wrong)


@given(
    ids=st.lists(st.integers(min_value=1, max_value=BIG), max_size=300),
    read_batch=st.integers(min_value=1, max_value=1000),
    extra=st.integers(min_value=0, max_value=1500),
)
def test_every_batch_obeys_the_limits(ids: list[int], read_batch: int, extra: int) -> None:
    base = BASE + "/" + "b" * extra
    cut = batches(base, ids, read_batch)
    assert [fid for batch in cut for fid in batch] == list(dict.fromkeys(ids))
    for batch in cut:
        assert 1 <= len(batch) <= read_batch
        assert len(list_url(base, batch, len(batch) - 1)) < MAX_URL
    for before, after in itertools.pairwise(cut):  # greedy: a batch is cut only when it must be
        grown = [*before, after[0]]
        assert len(before) == read_batch or longest(base, grown) >= MAX_URL


# --- the fake's rehearsals, as the classifier reads them -------------------------------------

KNOWN = {101: "G-1", 102: None, 103: "G-3", 104: "G-4", 50: "FIRST"}


def fake(mode: ListMode = ListMode.FULL, **options: Any) -> FakeFusebill:
    return FakeFusebill(KNOWN, list_mode=mode, **options)


def test_the_fake_is_a_service_with_a_list() -> None:
    made = fake()
    service: FusebillService = made
    assert service.customers([101]).status == 200
    assert made.methods() == ["customers"] and made.methods(101) == ["customers"]


def test_the_fakes_full_list_is_trusted_and_leaves_unknown_customers_to_read_alone() -> None:
    service = fake()
    got = classify_list(service.customers([103, 101, 999, 102]), [103, 101, 999, 102], 0)
    assert dict(got.holdings) == {103: Holding("G-3"), 101: Holding("G-1"), 102: Holding(None)}
    assert got.read_alone == (999,) and got.untrusted is None and got.next_page is None
    assert service.calls[0].ids == (103, 101, 999, 102) and service.methods(999) == ["customers"]
    assert service.count("customers") == 1


def test_the_fakes_pages_are_followed_to_the_end() -> None:
    service = fake(list_page_size=2)
    ids = [101, 102, 103, 104]
    got = classify_list(service.customers(ids), ids, 0)
    while got.next_page is not None:
        got = got.then(classify_list(service.customers(ids, got.next_page), ids, got.next_page))
    assert set(got.holdings) == set(ids) and got.read_alone == ()
    assert [c.page for c in service.calls] == [0, 1]


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        (ListMode.IGNORES_FILTER, "customer 50"),
        (ListMode.UNASKED, "customer 50"),
        (ListMode.NOT_FOUND, "HTTP 404"),
        (ListMode.HTML, "HTML page"),
    ],
)
def test_the_fakes_untrusted_lists_are_not_trusted(mode: ListMode, said: str) -> None:
    ids = [101, 102, 103]
    got = classify_list(fake(mode).customers(ids), ids, 0)
    assert got.untrusted is not None and said in got.untrusted
    assert dict(got.holdings) == {} and got.read_alone == tuple(ids)


def test_the_fakes_list_without_geotab_ids_turns_reads_one_by_one() -> None:
    for service in (fake(ListMode.NO_GEOTAB), FakeFusebill(KNOWN, show_geotab=False)):
        got = classify_list(service.customers([101, 102]), [101, 102], 0)
        assert got.no_geotab_anywhere and got.read_alone == (101, 102)


def test_the_fakes_list_that_leaves_customers_out_makes_them_read_alone() -> None:
    service = fake(ListMode.MISSING)
    got = classify_list(service.customers([101, 102, 103, 104]), [101, 102, 103, 104], 0)
    assert set(got.holdings) == {101, 103} and got.read_alone == (102, 104)
    assert service.customer(102).status == 200  # they do exist


def test_the_fakes_scripted_list_answers_come_first() -> None:
    service = fake().script_list(Reply(414, "URI Too Long"))
    assert service.customers([101]).status == 414
    assert service.customers([101]).status == 200


# --- every reading of the paging headers, at the same cost -----------------------------------


def read_every_page(service: FakeFusebill, ids: list[int]) -> ListAnswer:
    """The pages of one batch as the reader follows them."""
    got = classify_list(service.customers(ids, 0), ids, 0)
    while got.next_page is not None:
        page = got.next_page
        got = got.then(classify_list(service.customers(ids, page), ids, page))
    return got


# (known of the 100 asked, the server's page cap, list requests per header style)
COSTS = [
    (100, None, {"index": 1, "docs": 1, "none": 1}),
    (97, None, {"index": 1, "docs": 1, "none": 2}),
    (0, None, {"index": 1, "docs": 1, "none": 1}),
    (100, 40, {"index": 3, "docs": 3, "none": 3}),
    (97, 40, {"index": 3, "docs": 3, "none": 4}),
    (80, 40, {"index": 3, "docs": 3, "none": 3}),
    (100, 100, {"index": 1, "docs": 1, "none": 1}),
    (3, 1, {"index": 4, "docs": 4, "none": 4}),
    (100, 1, {"index": 100, "docs": 100, "none": 100}),
]


@pytest.mark.parametrize("style", ["index", "docs", "none"])
@pytest.mark.parametrize(("known", "cap", "costs"), COSTS)
def test_every_header_style_reads_every_known_customer_at_the_same_cost(
    style: str, known: int, cap: int | None, costs: dict[str, int]
) -> None:
    ids = list(range(1001, 1101))
    service = FakeFusebill(
        dict.fromkeys(ids[:known]), list_page_size=cap, list_headers=style, max_calls=200
    )
    got = read_every_page(service, ids)
    assert got.untrusted is None and set(got.holdings) == set(ids[:known])
    assert got.read_alone == tuple(ids[known:])
    assert service.count("customers") == costs[style]


def test_a_docs_style_answer_reads_a_batch_of_a_hundred_in_one_request() -> None:
    # Fusebill's page taken literally: X-MaxPageIndex 1 ("one page in total") on page 0
    # used to ask for an empty page 1 on every batch.
    ids = list(range(1001, 1101))
    service = FakeFusebill(dict.fromkeys(ids), list_headers="docs")
    first = service.customers(ids, 0)
    assert (first.header("x-maxpageindex"), first.header("x-count")) == ("1", "100")
    assert read_every_page(service, ids).read_alone == ()
    assert [call.page for call in service.calls] == [0, 0]  # the look above, then the read


def test_a_server_capping_pages_without_headers_costs_at_most_one_request_more() -> None:
    ids = list(range(1001, 1011))
    for cap in (1, 2, 3, 4, 7, 9, 10):
        for known in range(11):
            counts = []
            for style in ("index", "docs", "none"):
                service = FakeFusebill(
                    dict.fromkeys(ids[:known]), list_page_size=cap, list_headers=style
                )
                got = read_every_page(service, ids)
                assert set(got.holdings) == set(ids[:known])
                counts.append(service.count("customers"))
            assert counts[0] == counts[1] <= counts[2] <= counts[0] + 1
