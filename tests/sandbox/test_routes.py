"""``Api.handle`` without sockets: every decision the sandbox makes, request in, answer out."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from batch_latch.sandbox import DEFAULT_API_KEY, PROFILES, Answer, Api, Request, SandboxConfig

from .helpers import LONG, RATE_HEADERS

AUTH = f"Basic {DEFAULT_API_KEY}"


def api(**options: Any) -> Api:
    options.setdefault("minute_seconds", LONG)
    return Api(SandboxConfig(**options))


def latch(a: Api, fid: int, gid: str, auth: str | None = AUTH) -> Answer:
    body = json.dumps({"fusebillId": fid, "geotabId": gid}).encode()
    return a.handle(Request("POST", "/v1/Geotab/LatchCustomer", body, auth))


def unlatch(a: Api, fid: Any) -> Answer:
    body = json.dumps({"fusebillId": fid}).encode()
    return a.handle(Request("POST", "/v1/Geotab/UnlatchCustomer", body, AUTH))


def get(a: Api, fid: int) -> Answer:
    return a.handle(Request("GET", f"/v1/customers/{fid}", b"", AUTH))


def has_rate_headers(answer: Answer) -> bool:
    return all(answer.header(name) is not None for name in RATE_HEADERS)


def test_get_answers_a_fusebill_shaped_customer_with_its_geotab_id() -> None:
    a = api(preset={1_000_001: "0909909"})
    held = get(a, 1_000_001)
    assert held.status == 200
    assert held.header("Content-Type") == "application/json; charset=utf-8"
    body = held.json()
    assert (body["id"], body["geotabId"]) == (1_000_001, "0909909")
    assert body["uri"] == "http://127.0.0.1:0/v1/customers/1000001"  # no port bound here
    assert body["customerReference"]["id"] == 1_000_001
    assert body["customerAcquisition"]["uri"] == "/1000001"
    assert body["customerReference"]["salesTrackingCodes"] == []
    assert get(a, 1_000_002).json()["geotabId"] is None


def test_the_sample_customer_matches_fusebills_example() -> None:
    body = latch(api(), 671_201, "0909909").json()
    assert (body["firstName"], body["lastName"], body["companyName"]) == (
        "John",
        "Doe",
        "Stolen Bikes",
    )
    assert body["geotabId"] == "0909909"
    assert body["createdTimestamp"] == "2020-07-07T12:59:17.7930000Z"


LIVE_KEYS = (
    "geotabId",
    "hubSpotId",
    "hubSpotCompanyId",
    "digitalRiverId",
    "isParent",
    "canChangeCurrency",
    "createdTimestamp",
    "modifiedTimestamp",
    "uri",
)


def test_a_customer_looks_like_a_live_answer() -> None:
    a = api(preset={1_000_001: "G1"})
    a.base_url = "http://127.0.0.1:8765/v1"
    fresh, held = get(a, 1_000_002).json(), get(a, 1_000_001).json()
    latched = latch(a, 1_000_003, "G3").json()
    for body in (fresh, held, latched):
        assert all(key in body for key in LIVE_KEYS)
        assert (body["hubSpotId"], body["hubSpotCompanyId"], body["digitalRiverId"]) == (
            None,
            None,
            None,
        )
        assert (body["isParent"], body["canChangeCurrency"]) == (False, False)
        assert body["uri"] == f"http://127.0.0.1:8765/v1/customers/{body['id']}"
        for stamp in (body["createdTimestamp"], body["modifiedTimestamp"]):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", stamp), stamp
    assert (fresh["geotabId"], held["geotabId"], latched["geotabId"]) == (None, "G1", "G3")
    assert fresh["modifiedTimestamp"] == "2020-07-07T14:42:12.8536714Z"
    assert latched["modifiedTimestamp"] != fresh["modifiedTimestamp"]


def test_hide_geotab_id_leaves_the_key_out_of_reads_only() -> None:
    a = api(hide_geotab_id=True, preset={1_000_001: "G1"})
    read = get(a, 1_000_001).json()
    assert "geotabId" not in read
    assert read["id"] == 1_000_001
    assert latch(a, 1_000_001, "G2").json()["geotabId"] == "G2"
    assert "geotabId" not in get(a, 1_000_001).json()
    assert a.customers.get(1_000_001).geotab_id == "G2"


def test_unlatch_clears_and_answers_the_customer() -> None:
    a = api(preset={1_000_001: "G1"})
    answer = unlatch(a, 1_000_001)
    assert answer.status == 200
    assert answer.json()["geotabId"] is None
    assert answer.json()["id"] == 1_000_001
    assert a.customers.get(1_000_001).geotab_id is None
    assert has_rate_headers(answer)


@pytest.mark.parametrize(
    ("fid", "status", "value"),
    [
        (55, 404, "Customer with id 55 not found."),
        ("1000001", 400, "integer"),
        (0, 400, "greater than or equal to 1"),
    ],
)
def test_unlatch_errors_are_in_fusebills_format(fid: Any, status: int, value: str) -> None:
    answer = unlatch(api(), fid)
    body = answer.json()
    assert answer.status == status
    assert (body["ErrorId"], body["HttpStatusCode"]) == (0, status)
    assert value in body["Errors"][0]["Value"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_fusebill_answer_carries_the_limits(profile: str) -> None:
    a = api(profile=profile)
    limits = PROFILES[profile]
    answers = [
        latch(a, 1_000_001, "X"),
        latch(a, 123, "X"),
        get(a, 1_000_001),
        latch(a, 1_000_001, "X", auth="Basic nope"),
        a.handle(Request("GET", "/v1/nowhere", b"", AUTH)),
        a.protocol_error(413, "too large"),
    ]
    for answer in answers:
        assert has_rate_headers(answer), answer.status
        assert answer.header("X-Rate-Limit-Limit-Minute") == str(limits.per_minute)
        assert answer.header("X-Rate-Limit-Limit-Day") == str(limits.per_day)


def test_a_429_names_the_minute_limit_and_uses_up_nothing() -> None:
    a = api(profile="testdrive")
    assert [latch(a, 1_000_001 + i, "X").status for i in range(10)] == [200] * 10
    refused = latch(a, 1_000_050, "X")
    assert refused.status == 429
    assert refused.json()["Errors"][0]["Value"].startswith("Rate limit exceeded: 10 requests")
    assert refused.header("Retry-After") is None
    assert refused.header("X-Rate-Limit-Remaining-Day") == "490"
    assert latch(a, 1_000_050, "X").header("X-Rate-Limit-Remaining-Day") == "490"
    assert a.customers.get(1_000_050).geotab_id is None


def test_a_429_names_the_daily_limit() -> None:
    a = api(day_limit=2)
    latch(a, 1_000_001, "X")
    latch(a, 1_000_001, "X")
    refused = latch(a, 1_000_001, "X")
    assert refused.status == 429
    assert refused.json()["Errors"][0]["Value"] == "Daily rate limit exceeded: 2 requests per day"


@pytest.mark.parametrize(("seconds", "expected"), [(0, "0"), (86_400, "86400")])
def test_retry_after_seconds_is_sent_as_given(seconds: int, expected: str) -> None:
    a = api(profile="testdrive", retry_after_seconds=seconds)
    for i in range(10):
        assert latch(a, 1_000_001 + i, "X").header("Retry-After") is None
    assert latch(a, 1_000_001, "X").header("Retry-After") == expected


def test_retry_after_alone_says_when_the_limit_frees() -> None:
    a = api(profile="testdrive", retry_after=True)
    for i in range(10):
        latch(a, 1_000_001 + i, "X")
    value = latch(a, 1_000_001, "X").header("Retry-After")
    assert value is not None
    assert 1 <= int(value) <= LONG


def test_html_200_is_a_captive_portal_that_applies_and_uses_up_nothing() -> None:
    a = api(html_200_rate=1.0, profile="testdrive")
    answer = latch(a, 1_000_001, "X")
    assert answer.status == 200
    assert answer.header("Content-Type") == "text/html; charset=utf-8"
    assert answer.body.lstrip().lower().startswith(b"<!doctype html>")
    assert not has_rate_headers(answer)
    assert a.customers.get(1_000_001).geotab_id is None
    # Reads are not latches: they reach "Fusebill", which has counted nothing yet.
    assert get(a, 1_000_001).header("X-Rate-Limit-Remaining-Day") == "499"


def test_empty_200_applies_nothing() -> None:
    a = api(empty_200_rate=1.0)
    answer = latch(a, 1_000_001, "X")
    assert (answer.status, answer.body) == (200, b"")
    assert answer.header("Content-Type") is None
    assert has_rate_headers(answer)
    assert a.customers.get(1_000_001).geotab_id is None


def test_applied_then_504_changes_the_state_although_the_answer_is_504() -> None:
    a = api(applied_then_504_rate=1.0)
    answer = latch(a, 1_000_001, "LANDED")
    assert answer.status == 504
    assert b"504 Gateway Time-out" in answer.body
    assert answer.header("Content-Type") == "text/html; charset=utf-8"
    assert not has_rate_headers(answer)  # a load balancer's page, not Fusebill's
    assert a.customers.get(1_000_001).geotab_id == "LANDED"
    assert "504" in answer.note
    # The read-back the client should make shows the latch.
    assert get(a, 1_000_001).json()["geotabId"] == "LANDED"


def test_applied_then_504_is_reproducible_with_a_seed() -> None:
    def statuses() -> list[int]:
        a = api(applied_then_504_rate=0.5, seed=11)
        return [latch(a, 1_000_001 + i, "X").status for i in range(30)]

    first = statuses()
    assert first == statuses()
    assert set(first) == {200, 504}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_redirect_to_answers_every_request_with_301(method: str) -> None:
    a = api(redirect_to="https://secure.fusebill.com/v1")
    body = json.dumps({"fusebillId": 1_000_001, "geotabId": "X"}).encode()
    answer = a.handle(Request(method, "/v1/Geotab/LatchCustomer", body, AUTH))
    assert answer.status == 301
    assert answer.header("Location") == "https://secure.fusebill.com/v1"
    assert a.customers.get(1_000_001).geotab_id is None
    assert answer.fusebill_id == 1_000_001


def test_drip_applies_to_every_answer_or_only_to_chosen_ids() -> None:
    everyone = api(drip_seconds=0.5)
    assert latch(everyone, 1_000_001, "X").drip_s == 0.5
    assert everyone.handle(Request("GET", "/v1/nowhere")).drip_s == 0.5
    chosen = api(drip_seconds=0.5, drip_ids=frozenset({1_000_002}))
    assert latch(chosen, 1_000_001, "X").drip_s == 0
    assert latch(chosen, 1_000_002, "X").drip_s == 0.5
    assert get(chosen, 1_000_002).drip_s == 0.5


def test_key_is_checked_before_the_limits() -> None:
    a = api(profile="testdrive")
    missing = latch(a, 1_000_001, "X", auth=None)
    wrong = latch(a, 1_000_001, "X", auth="Basic nope")
    assert (missing.status, wrong.status) == (401, 401)
    assert missing.json()["Errors"][0]["Value"] == "API key missing"
    assert wrong.json()["Errors"][0]["Value"] == "Invalid API key"
    assert get(a, 1_000_001).header("X-Rate-Limit-Remaining-Day") == "499"
