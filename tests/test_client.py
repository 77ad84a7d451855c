"""FusebillClient against requests-mock: the request it sends, how answers are classified,
rate-limit headers, and that the API key never leaks into what it returns."""

from __future__ import annotations

import base64
import email.utils
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
import requests_mock as rm

from batch_latch.client import (
    FusebillClient,
    Kind,
    Reply,
    Verdict,
    classify,
    error_text,
    limits,
    parse_time,
    retry_after,
    seconds_until,
)

BASE = "https://fusebill.test/v1"
LATCH = f"{BASE}/Geotab/LatchCustomer"
KEY = "sk_live_SECRET123"

# The reference page's error body.
NOT_FOUND_BODY = {
    "ErrorId": 0,
    "HttpStatusCode": 404,
    "Errors": [{"Key": "Api Error", "Value": "Customer with id 123 not found."}],
}


def customer(geotab_id: Any = "0909909", fusebill_id: int = 671201) -> dict[str, Any]:
    """A trimmed version of the reference page's success body."""
    return {
        "firstName": "John",
        "lastName": "Doe",
        "status": "Active",
        "geotabId": geotab_id,
        "modifiedTimestamp": "2020-07-07T14:42:12.8536714Z",
        "id": fusebill_id,
        "uri": f"/customers/{fusebill_id}",
    }


def error_body(status: int, value: str, key: str = "Api Error") -> dict[str, Any]:
    return {"ErrorId": 0, "HttpStatusCode": status, "Errors": [{"Key": key, "Value": value}]}


@pytest.fixture
def client() -> Iterator[FusebillClient]:
    c = FusebillClient(BASE + "/", KEY, timeout=7.5, pool_size=4)
    yield c
    c.close()


def latch_answer(
    client: FusebillClient,
    mock: rm.Mocker,
    geotab_id: str = "0909909",
    **response: Any,
) -> tuple[Reply, Verdict]:
    mock.post(LATCH, **response)
    reply = client.latch(671201, geotab_id)
    return reply, classify(reply, geotab_id)


def reply(**headers: str) -> Reply:
    return Reply(200, None, {k.replace("_", "-").lower(): v for k, v in headers.items()})


# --- the request -----------------------------------------------------------------------------


def test_latch_sends_post_with_json_body_and_key_as_given(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(LATCH, json=customer())
    client.latch(12717595, "0909909")

    assert requests_mock.call_count == 1
    sent = requests_mock.last_request
    assert sent is not None
    assert sent.method == "POST"
    assert sent.url == LATCH  # trailing slash of the base removed, no double slash
    body = sent.json()
    assert body == {"fusebillId": 12717595, "geotabId": "0909909"}
    assert type(body["fusebillId"]) is int
    assert type(body["geotabId"]) is str  # leading zero kept: text, not a number
    assert '"geotabId": "0909909"' in sent.text or '"geotabId":"0909909"' in sent.text
    assert sent.headers["Authorization"] == f"Basic {KEY}"
    assert base64.b64encode(KEY.encode()).decode() not in sent.headers["Authorization"]
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.timeout == (7.5, 7.5)  # type: ignore[comparison-overlap]  # stub says int


def test_redirects_are_not_followed(client: FusebillClient, requests_mock: rm.Mocker) -> None:
    # Following one would turn the POST into a GET elsewhere, or carry the key to another host.
    requests_mock.post(LATCH, status_code=302, headers={"Location": "https://elsewhere.test/"})
    requests_mock.get("https://elsewhere.test/", json=customer())
    got = client.latch(671201, "0909909")
    assert got.status == 302
    assert requests_mock.call_count == 1
    assert classify(got, "0909909").kind is Kind.REJECTED


def test_latch_sends_the_largest_fusebill_id_as_a_json_integer(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(LATCH, json={})
    client.latch(9223372036854775807, "x")
    sent = requests_mock.last_request
    assert sent is not None
    assert '"fusebillId": 9223372036854775807' in sent.text


def test_customer_read_back_is_a_get_on_the_customer(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(f"{BASE}/customers/671201", json=customer())
    got = client.customer(671201)

    sent = requests_mock.last_request
    assert sent is not None
    assert sent.method == "GET"
    assert sent.url == f"{BASE}/customers/671201"
    assert sent.headers["Authorization"] == f"Basic {KEY}"
    assert got.status == 200
    assert got.body["geotabId"] == "0909909"


def test_reply_keeps_status_parsed_body_and_lowercased_headers(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    got, _ = latch_answer(
        client, requests_mock, json=customer(), headers={"X-Rate-Limit-Remaining-Minute": "7"}
    )
    assert got.status == 200
    assert got.body == customer()
    assert got.error is None
    assert got.header("X-Rate-Limit-Remaining-Minute") == "7"
    assert got.headers["x-rate-limit-remaining-minute"] == "7"


# --- classify: answers -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_is_success(client: FusebillClient, requests_mock: rm.Mocker, status: int) -> None:
    _, verdict = latch_answer(client, requests_mock, status_code=status, json=customer())
    assert verdict.kind is Kind.SUCCESS
    assert not verdict.ambiguous


@pytest.mark.parametrize(
    "response",
    [{"json": {"id": 671201, "firstName": "John"}}, {"text": ""}, {"text": "OK"}],
    ids=["json-without-geotabId", "empty", "plain-text"],
)
def test_2xx_without_a_geotab_id_is_success(
    client: FusebillClient, requests_mock: rm.Mocker, response: dict[str, Any]
) -> None:
    _, verdict = latch_answer(client, requests_mock, status_code=200, **response)
    assert verdict.kind is Kind.SUCCESS


@pytest.mark.parametrize("returned", ["909909", "1234", 909909, None])
def test_2xx_carrying_another_geotab_id_is_a_mismatch(
    client: FusebillClient, requests_mock: rm.Mocker, returned: Any
) -> None:
    # None: Fusebill's customer object always has the field; null means nothing is latched,
    # which must not pass for a success (the read-back after a timeout relies on it).
    _, verdict = latch_answer(client, requests_mock, json=customer(returned))
    assert verdict.kind is Kind.MISMATCH
    assert verdict.error_key == "geotab_id_mismatch"
    assert "0909909" in verdict.message


def test_read_back_of_an_unlatched_customer_does_not_confirm(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(f"{BASE}/customers/671201", json=customer(None))
    verdict = classify(client.customer(671201), "0909909")
    assert verdict.kind is not Kind.SUCCESS


def test_404_is_not_found_with_the_errors_value(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    _, verdict = latch_answer(client, requests_mock, status_code=404, json=NOT_FOUND_BODY)
    assert verdict.kind is Kind.NOT_FOUND
    assert verdict.message == "Customer with id 123 not found."
    assert verdict.error_key == "not_found"


def test_several_error_values_are_all_kept() -> None:
    body = {"Errors": [{"Key": "a", "Value": "first"}, {"Key": "b", "Value": "second"}]}
    assert error_text(body) == ("first; second", "a")


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_reject_the_key(
    client: FusebillClient, requests_mock: rm.Mocker, status: int
) -> None:
    _, verdict = latch_answer(
        client, requests_mock, status_code=status, json=error_body(status, "Invalid API key")
    )
    assert verdict.kind is Kind.KEY_REJECTED
    assert verdict.message == "Invalid API key"


@pytest.mark.parametrize(
    ("body", "headers", "daily"),
    [
        (error_body(429, "Daily rate limit exceeded: 5000 requests per day"), {}, True),
        (error_body(429, "Rate limit exceeded: 50 requests per minute"), {}, False),
        (
            error_body(429, "Rate limit exceeded: 50 requests per minute"),
            {"X-Rate-Limit-Remaining-Day": "0"},
            True,
        ),
        (
            error_body(429, "Rate limit exceeded: 50 requests per minute"),
            {"X-Rate-Limit-Remaining-Day": "4950", "X-Rate-Limit-Remaining-Minute": "0"},
            False,
        ),
        ({}, {}, False),
    ],
    ids=["daily-body", "minute-body", "daily-header", "minute-header", "empty"],
)
def test_429_is_rate_limited_and_tells_the_daily_limit_apart(
    client: FusebillClient,
    requests_mock: rm.Mocker,
    body: dict[str, Any],
    headers: dict[str, str],
    daily: bool,
) -> None:
    _, verdict = latch_answer(client, requests_mock, status_code=429, json=body, headers=headers)
    assert verdict.kind is Kind.RATE_LIMITED
    assert verdict.daily_limit is daily
    assert verdict.message  # never empty, even for an empty body


@pytest.mark.parametrize(("status", "ambiguous"), [(408, False), (500, True), (502, True)])
def test_408_and_5xx_are_retryable(
    client: FusebillClient, requests_mock: rm.Mocker, status: int, ambiguous: bool
) -> None:
    _, verdict = latch_answer(
        client, requests_mock, status_code=status, json=error_body(status, "try later")
    )
    assert verdict.kind is Kind.RETRYABLE
    assert verdict.ambiguous is ambiguous
    assert str(status) in verdict.message
    assert "try later" in verdict.message


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (requests.exceptions.ConnectTimeout, "timeout"),
        (requests.exceptions.ReadTimeout, "timeout"),
        (
            requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"),
            "connection",
        ),
        (requests.exceptions.ChunkedEncodingError("connection broken"), "connection"),
    ],
    ids=["connect-timeout", "read-timeout", "connection", "broken-body"],
)
def test_no_answer_is_retryable_and_ambiguous(
    client: FusebillClient, requests_mock: rm.Mocker, exc: Any, error: str
) -> None:
    got, verdict = latch_answer(client, requests_mock, exc=exc)
    assert got.status is None
    assert got.error == error
    assert verdict.kind is Kind.RETRYABLE
    assert verdict.ambiguous
    assert verdict.error_key == error
    if error == "timeout":
        assert "7.5 s" in verdict.message


@pytest.mark.parametrize("status", [400, 409, 422])
def test_other_4xx_are_rejected_with_the_body_message(
    client: FusebillClient, requests_mock: rm.Mocker, status: int
) -> None:
    _, verdict = latch_answer(
        client, requests_mock, status_code=status, json=error_body(status, "geotabId is invalid")
    )
    assert verdict.kind is Kind.REJECTED
    assert verdict.message == "geotabId is invalid"
    assert verdict.error_key == f"http_{status}"
    assert not verdict.ambiguous


def test_rejected_with_a_plain_message_field(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    _, verdict = latch_answer(
        client, requests_mock, status_code=400, json={"Message": "The request is invalid."}
    )
    assert verdict.message == "The request is invalid."


@pytest.mark.parametrize("status", [400, 502])
def test_html_from_a_proxy_gives_a_short_one_line_message(
    client: FusebillClient, requests_mock: rm.Mocker, status: int
) -> None:
    html = (
        "<html>\r\n<head><title>Bad Gateway</title></head>\n\n  <body>\n\t<h1>Bad   Gateway</h1>"
        + "\n<p>filler</p>" * 200
        + "\n</body></html>\n"
    )
    got, verdict = latch_answer(
        client, requests_mock, status_code=status, text=html, headers={"Content-Type": "text/html"}
    )
    assert isinstance(got.body, str)
    assert "Bad Gateway" in verdict.message
    assert len(verdict.message) <= 220
    assert "\n" not in verdict.message and "\r" not in verdict.message
    assert "\t" not in verdict.message and "  " not in verdict.message


def test_empty_error_body_says_the_status(client: FusebillClient, requests_mock: rm.Mocker) -> None:
    _, verdict = latch_answer(client, requests_mock, status_code=400, text="")
    assert verdict.kind is Kind.REJECTED
    assert verdict.message == "HTTP 400"


# --- times and rate-limit headers ------------------------------------------------------------

NOW = datetime(2024, 3, 1, 12, 0, 45, 500000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1709294400", datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)),
        ("1709294400.25", datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)),
        (" 1709294400 ", datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)),
        ("2024-03-01T12:01:00Z", datetime(2024, 3, 1, 12, 1, tzinfo=timezone.utc)),
        ("2024-03-01T12:01:00z", datetime(2024, 3, 1, 12, 1, tzinfo=timezone.utc)),
        ("2024-03-01T12:01:00.123Z", datetime(2024, 3, 1, 12, 1, 0, 123000, tzinfo=timezone.utc)),
        (
            "2024-03-01T12:01:00.8536714Z",  # .NET's seven digits, as in Fusebill's bodies
            datetime(2024, 3, 1, 12, 1, 0, 853671, tzinfo=timezone.utc),
        ),
        ("2024-03-01T14:01:00+02:00", datetime(2024, 3, 1, 12, 1, tzinfo=timezone.utc)),
        ("2024-03-01T07:01:00.5-05:00", datetime(2024, 3, 1, 12, 1, 0, 500000, timezone.utc)),
        ("2024-03-01T12:01:00", datetime(2024, 3, 1, 12, 1, tzinfo=timezone.utc)),  # naive: UTC
        ("Fri, 01 Mar 2024 12:01:00 GMT", datetime(2024, 3, 1, 12, 1, tzinfo=timezone.utc)),
        ("Fri, 01 Mar 2024 13:01:00 +0100", datetime(2024, 3, 1, 12, 1, tzinfo=timezone.utc)),
    ],
)
def test_parse_time_reads_epoch_iso_and_http_dates(text: str, expected: datetime) -> None:
    got = parse_time(text)
    assert got == expected
    assert got is not None and got.utcoffset() is not None


@pytest.mark.parametrize(
    "text", [None, "", "   ", "soon", "nan", "inf", "-inf", "1e20", "2024-13-45T99:00:00Z"]
)
def test_parse_time_unreadable_is_none(text: str | None) -> None:
    assert parse_time(text) is None


def http_date(when: datetime) -> str:
    return email.utils.format_datetime(when.astimezone(timezone.utc), usegmt=True)


def test_seconds_until_uses_our_clock_when_the_server_agrees() -> None:
    r = reply(date=http_date(NOW.replace(microsecond=0) + timedelta(seconds=1)))
    assert seconds_until("2024-03-01T12:01:00Z", r, NOW) == pytest.approx(14.5)
    assert seconds_until("2024-03-01T12:01:00Z", reply(), NOW) == pytest.approx(14.5)
    assert seconds_until("garbage", reply(), NOW) is None


@pytest.mark.parametrize("skew", [-3600.0, -3.0, 3.0, 600.0])
def test_seconds_until_measures_against_a_skewed_server_date(skew: float) -> None:
    server_now = NOW.replace(microsecond=0) + timedelta(seconds=skew)
    r = reply(date=http_date(server_now))
    reset = (server_now + timedelta(seconds=20)).isoformat()
    assert seconds_until(reset, r, NOW) == pytest.approx(20.0)


def test_retry_after_in_seconds() -> None:
    assert retry_after(reply(retry_after="30"), NOW) == 30.0
    assert retry_after(reply(retry_after="2.5"), NOW) == 2.5
    assert retry_after(reply(retry_after="-4"), NOW) == 0.0
    assert retry_after(reply(), NOW) is None
    assert retry_after(reply(retry_after="whenever"), NOW) is None


def test_retry_after_as_an_http_date() -> None:
    r = reply(retry_after=http_date(NOW.replace(microsecond=0) + timedelta(seconds=30)))
    assert retry_after(r, NOW) == pytest.approx(29.5)
    past = reply(retry_after=http_date(NOW - timedelta(minutes=5)))
    assert retry_after(past, NOW) == 0.0


@pytest.mark.parametrize("skew", [-3600.0, 300.0])
def test_retry_after_date_is_measured_against_a_skewed_server_date(skew: float) -> None:
    server_now = NOW.replace(microsecond=0) + timedelta(seconds=skew)
    r = reply(date=http_date(server_now), retry_after=http_date(server_now + timedelta(seconds=20)))
    assert retry_after(r, NOW) == pytest.approx(20.0)


def test_limits_reads_every_header() -> None:
    r = reply(
        x_rate_limit_remaining_minute="0",
        x_rate_limit_reset_minute="2024-03-01T12:01:00Z",
        x_rate_limit_remaining_day="4321",
        x_rate_limit_reset_day="1709337600",
    )
    seen = limits(r, NOW)
    assert seen.remaining_minute == 0
    assert seen.reset_minute == pytest.approx(14.5)
    assert seen.remaining_day == 4321
    assert seen.reset_day_at == datetime(2024, 3, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "reset",
    [
        "1709294460",  # epoch
        "1709294460.0",
        "2024-03-01T12:01:00.000Z",
        "2024-03-01T07:01:00-05:00",
        "Fri, 01 Mar 2024 12:01:00 GMT",
    ],
)
def test_limits_reset_minute_in_every_format(reset: str) -> None:
    seen = limits(reply(x_rate_limit_remaining_minute="0", x_rate_limit_reset_minute=reset), NOW)
    assert seen.reset_minute == pytest.approx(14.5)


@pytest.mark.parametrize(
    "reset",
    [None, "garbage", "", "2024-03-01T12:30:00Z", "30"],
    ids=["missing", "garbage", "empty", "half-an-hour-away", "1970"],
)
def test_limits_exhausted_minute_without_a_usable_reset_waits_for_the_next_full_minute(
    reset: str | None,
) -> None:
    headers = {"x_rate_limit_remaining_minute": "0"}
    if reset is not None:
        headers["x_rate_limit_reset_minute"] = reset
    assert limits(reply(**headers), NOW).reset_minute == pytest.approx(14.5)


def test_limits_reset_just_passed_means_no_wait() -> None:
    seen = limits(
        reply(x_rate_limit_remaining_minute="0", x_rate_limit_reset_minute="1709294444"), NOW
    )
    assert seen.reset_minute == 0.0


def test_limits_reset_minute_with_a_skewed_server_clock() -> None:
    server_now = NOW.replace(microsecond=0) - timedelta(hours=1)
    r = reply(
        date=http_date(server_now),
        x_rate_limit_remaining_minute="0",
        x_rate_limit_reset_minute=(server_now + timedelta(seconds=12)).isoformat(),
    )
    assert limits(r, NOW).reset_minute == pytest.approx(12.0)


def test_limits_without_headers() -> None:
    seen = limits(reply(), NOW)
    assert seen.remaining_minute is None
    assert seen.reset_minute is None
    assert seen.remaining_day is None
    assert seen.reset_day_at is None
    assert limits(reply(x_rate_limit_remaining_minute="12"), NOW).reset_minute is None
    assert limits(reply(x_rate_limit_remaining_minute="lots"), NOW).remaining_minute is None


def test_limits_from_a_real_response(client: FusebillClient, requests_mock: rm.Mocker) -> None:
    got, _ = latch_answer(
        client,
        requests_mock,
        json=customer(),
        headers={
            "X-Rate-Limit-Limit-Minute": "50",
            "X-Rate-Limit-Remaining-Minute": "0",
            "X-Rate-Limit-Reset-Minute": "1709294460",
            "X-Rate-Limit-Remaining-Day": "0",
            "X-Rate-Limit-Reset-Day": "2024-03-02T00:00:00Z",
        },
    )
    seen = limits(got, NOW)
    assert (seen.remaining_minute, seen.remaining_day) == (0, 0)
    assert seen.reset_minute == pytest.approx(14.5)
    assert seen.reset_day_at == datetime(2024, 3, 2, tzinfo=timezone.utc)


# --- secrets ---------------------------------------------------------------------------------


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text
        # not even a recognisable piece of it (a truncation must not cut a key in half)
        assert not any(KEY[:n] in text for n in range(10, len(KEY)))


def test_connection_error_text_with_the_key_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    exc = requests.exceptions.ConnectionError(
        f"HTTPSConnectionPool: Max retries exceeded (Authorization: Basic {KEY}) refused"
    )
    got, verdict = latch_answer(client, requests_mock, exc=exc)
    assert got.error == "connection"
    assert "refused" in verdict.message
    assert_no_key(got.detail, verdict.message, repr(got), repr(verdict), repr(client))


def test_connection_error_with_the_key_at_the_cut_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    for pad in range(180, 205):
        exc = requests.exceptions.ConnectionError("x" * pad + KEY + " and more")
        got, verdict = latch_answer(client, requests_mock, exc=exc)
        assert_no_key(got.detail, verdict.message, repr(got))
        assert len(got.detail) <= 200


def test_timeout_carries_no_key(client: FusebillClient, requests_mock: rm.Mocker) -> None:
    exc = requests.exceptions.ReadTimeout(f"read timed out; header Basic {KEY}")
    got, verdict = latch_answer(client, requests_mock, exc=exc)
    assert_no_key(got.detail, verdict.message, repr(got), repr(verdict))


@pytest.mark.parametrize("status", [200, 400, 401, 404, 429, 500])
def test_an_answer_echoing_the_key_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker, status: int
) -> None:
    got, verdict = latch_answer(
        client,
        requests_mock,
        status_code=status,
        json=error_body(status, f"Invalid API key '{KEY}'") | {"geotabId": "0909909"},
        headers={"X-Echo": f"Basic {KEY}"},
    )
    assert_no_key(verdict.message, repr(got), repr(verdict), got.detail)


def test_a_text_answer_echoing_the_key_is_redacted(
    client: FusebillClient, requests_mock: rm.Mocker
) -> None:
    got, verdict = latch_answer(
        client, requests_mock, status_code=401, text=f"<h1>Unauthorized</h1> Basic {KEY}"
    )
    assert "Unauthorized" in verdict.message
    assert_no_key(verdict.message, repr(got))


def test_client_repr_does_not_show_the_key(client: FusebillClient) -> None:
    assert_no_key(repr(client), str(client))
    assert client.redact(f"a {KEY} b") == "a [redacted] b"
