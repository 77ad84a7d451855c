"""What an answer means: pure decisions over Reply values (no HTTP), and the rate-limit headers.

The decision table: every answer outside 2xx means the same for a latch, a read and an
unlatch; a 2xx proves itself (a latch shows the geotabId sent, a read is this customer's
object, an unlatch shows this customer holding none) or it proves nothing.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from batch_latch.fusebill.answers import (
    Holding,
    Meaning,
    Reply,
    ReplyError,
    Verdict,
    classify_latch,
    classify_read,
    classify_unlatch,
    error_text,
)
from batch_latch.fusebill.ratelimits import Limits, limits, parse_time, retry_after, seconds_until
from batch_latch.vocab import StopReason

URL = "https://secure.fusebill.test/v1/Geotab/LatchCustomer"
FID = 671201
SENT = "0909909"


def fusebill_error(status: int, value: str, key: str = "Api Error") -> dict[str, Any]:
    return {"ErrorId": 0, "HttpStatusCode": status, "Errors": [{"Key": key, "Value": value}]}


def customer(geotab_id: object = SENT, fusebill_id: object = FID) -> dict[str, object]:
    """A trimmed version of Fusebill's customer object."""
    return {
        "firstName": "John",
        "lastName": "Doe",
        "status": "Active",
        "geotabId": geotab_id,
        "modifiedTimestamp": "2020-07-07T14:42:12.8536714Z",
        "id": fusebill_id,
        "uri": f"/customers/{fusebill_id}",
    }


def r(status: int | None, body: object = None, error: str | None = None, **headers: str) -> Reply:
    names = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    reason = None if error is None else ReplyError(error)
    return Reply(status, body, names, error=reason, detail=_DETAILS.get(error or "", ""), url=URL)


_DETAILS = {
    "tls": "certificate verify failed: certificate has expired (trusting certifi)",
    "proxy": "proxy http://127.0.0.1:3128: Tunnel connection failed: 407 Proxy Authentication",
    "timeout": "no complete answer within 7.5 s",
    "connection": "ConnectionRefusedError: [Errno 111] Connection refused",
    "too_large": "answer of 52428800 bytes over the 1 MiB cap: not read further",
}

HTML = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def by_operation(operation: str) -> Callable[[Reply], Verdict]:
    if operation == "latch":
        return lambda reply: classify_latch(reply, SENT)
    if operation == "read":
        return lambda reply: classify_read(reply, FID)[0]
    return lambda reply: classify_unlatch(reply, FID)


OPERATIONS = ["latch", "read", "unlatch"]

# --- outside 2xx: one mapping for all three --------------------------------------------------

Outcome = tuple[Meaning, "StopReason | None", str, bool]  # kind, stop, error_key, ambiguous
TLS: Outcome = (Meaning.STOP, StopReason.TLS, "tls", False)
PROXY: Outcome = (Meaning.STOP, StopReason.PROXY, "proxy", False)
REDIRECT: Outcome = (Meaning.STOP, StopReason.REDIRECT, "redirect", False)
WRONG_URL: Outcome = (Meaning.STOP, StopReason.WRONG_URL, "wrong_url", False)
KEY: Outcome = (Meaning.KEY_REJECTED, None, "key_rejected", False)
NOT_FOUND: Outcome = (Meaning.NOT_FOUND, None, "not_found", False)
RATE: Outcome = (Meaning.RATE_LIMITED, None, "rate_limited", False)


def retry(error_key: str, ambiguous: bool = False) -> Outcome:
    return (Meaning.RETRYABLE, None, error_key, ambiguous)


def rejected(status: int) -> Outcome:
    return (Meaning.REJECTED, None, f"http_{status}", False)


OUTSIDE_2XX: list[tuple[str, Reply, Outcome]] = [
    ("tls", r(None, error="tls"), TLS),
    ("proxy-error", r(None, error="proxy"), PROXY),
    ("407", r(407, ""), PROXY),
    ("301", r(301, HTML, location="https://x.test/v1"), REDIRECT),
    ("302", r(302, "", location="/login"), REDIRECT),
    ("307", r(307, None, location="https://x.test/"), REDIRECT),
    ("308", r(308, "", location="https://x.test/"), REDIRECT),
    ("401", r(401, fusebill_error(401, "Invalid API key")), KEY),
    ("403", r(403, HTML), KEY),
    ("404-fusebill", r(404, fusebill_error(404, "Customer with id 1 not found.")), NOT_FOUND),
    ("404-html", r(404, HTML), WRONG_URL),
    ("404-empty", r(404, ""), WRONG_URL),
    ("404-aspnet", r(404, {"Message": "No HTTP resource was found"}), WRONG_URL),
    ("404-errors-only", r(404, {"Errors": [{"Key": "k", "Value": "v"}]}), WRONG_URL),
    ("404-no-values", r(404, {"ErrorId": 0, "HttpStatusCode": 404, "Errors": []}), WRONG_URL),
    ("404-too-large", r(404, None, error="too_large"), WRONG_URL),
    ("405", r(405, fusebill_error(405, "Method not allowed")), WRONG_URL),
    ("408", r(408, ""), retry("http_408")),
    ("409", r(409, fusebill_error(409, "Conflict")), retry("http_409")),
    ("500", r(500, fusebill_error(500, "oops")), retry("http_500", True)),
    ("502-html", r(502, HTML), retry("http_502", True)),
    ("504", r(504, ""), retry("http_504", True)),
    ("timeout", r(None, error="timeout"), retry("timeout", True)),
    ("connection", r(None, error="connection"), retry("connection", True)),
    ("too-large-502", r(502, None, error="too_large"), retry("http_502", True)),
    ("too-large-400", r(400, None, error="too_large"), retry("http_400")),
    ("429", r(429, fusebill_error(429, "Rate limit exceeded")), RATE),
    ("429-too-large", r(429, None, error="too_large"), RATE),
    ("400", r(400, fusebill_error(400, "geotabId is invalid")), rejected(400)),
    ("422", r(422, {"Message": "bad"}), rejected(422)),
    ("410", r(410, ""), rejected(410)),
]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(
    ("reply", "outcome"), [row[1:] for row in OUTSIDE_2XX], ids=[row[0] for row in OUTSIDE_2XX]
)
def test_outside_2xx_means_the_same_for_latch_read_and_unlatch(
    operation: str, reply: Reply, outcome: Outcome
) -> None:
    verdict = by_operation(operation)(reply)
    assert (verdict.kind, verdict.stop, verdict.error_key, verdict.ambiguous) == outcome
    assert verdict.message.strip() and "\n" not in verdict.message
    if operation == "read":
        assert classify_read(reply, FID)[1] is None


def test_tls_stop_keeps_the_cause_and_names_the_ca_variables() -> None:
    verdict = classify_latch(r(None, error="tls"), SENT)
    assert "certificate has expired" in verdict.message
    assert "REQUESTS_CA_BUNDLE" in verdict.message and "SSL_CERT_FILE" in verdict.message
    assert URL.rsplit("/Geotab/", 1)[0] in verdict.message  # the base URL, not the route


@pytest.mark.parametrize("reply", [r(None, error="proxy"), r(407, "")], ids=["tunnel", "407"])
def test_proxy_stop_names_the_proxy_variables(reply: Reply) -> None:
    verdict = classify_latch(reply, SENT)
    assert "HTTPS_PROXY" in verdict.message and "NO_PROXY" in verdict.message
    assert "407" in verdict.message


def test_redirect_stop_names_the_location_and_the_setting() -> None:
    verdict = classify_read(r(301, HTML, location="https://new.fusebill.test/v1/x"), FID)[0]
    assert "https://new.fusebill.test/v1/x" in verdict.message
    assert "FUSEBILL_BASE_URL" in verdict.message and "final URL" in verdict.message
    assert "without a Location" in classify_latch(r(302, ""), SENT).message


def test_wrong_url_stop_names_the_url_requested() -> None:
    verdict = classify_latch(r(404, HTML), SENT)
    assert URL in verdict.message and "FUSEBILL_BASE_URL" in verdict.message


def test_not_found_carries_every_errors_value() -> None:
    body = fusebill_error(404, "Customer with id 123 not found.")
    body["Errors"].append({"Key": "b", "Value": "second"})
    for operation in OPERATIONS:
        verdict = by_operation(operation)(r(404, body))
        assert verdict.message == "Customer with id 123 not found.; second"


@pytest.mark.parametrize("status", [401, 403])
def test_key_rejected_message_comes_from_the_body(status: int) -> None:
    assert classify_latch(r(status, fusebill_error(status, "Invalid API key")), SENT).message == (
        "Invalid API key"
    )
    assert classify_latch(r(status, ""), SENT).message == f"HTTP {status}"


@pytest.mark.parametrize(("status", "ambiguous"), [(408, False), (409, False), (502, True)])
def test_retryable_message_names_the_status_and_the_body(status: int, ambiguous: bool) -> None:
    verdict = classify_latch(r(status, fusebill_error(status, "try later")), SENT)
    assert f"HTTP {status}" in verdict.message and "try later" in verdict.message


def test_no_answer_says_what_happened() -> None:
    assert "7.5 s" in classify_latch(r(None, error="timeout"), SENT).message
    assert "refused" in classify_latch(r(None, error="connection"), SENT).message
    assert classify_latch(Reply(None), SENT).error_key == "connection"  # no error named


def test_rejected_keeps_the_body_message_short_and_on_one_line() -> None:
    html = "<html>\r\n<h1>Bad   Request</h1>" + "\n<p>filler</p>" * 200
    verdict = classify_latch(r(400, html), SENT)
    assert "Bad Request" in verdict.message
    assert len(verdict.message) <= 220 and "  " not in verdict.message
    assert classify_latch(r(400, {"Message": "The request is invalid."}), SENT).message == (
        "The request is invalid."
    )
    assert classify_latch(r(400, ""), SENT).message == "HTTP 400"


@pytest.mark.parametrize(
    ("body", "headers", "daily"),
    [
        (fusebill_error(429, "Daily rate limit exceeded: 5000 requests per day"), {}, True),
        (fusebill_error(429, "Rate limit exceeded: 50 requests per minute"), {}, False),
        (
            fusebill_error(429, "Rate limit exceeded: 50 requests per minute"),
            {"x_rate_limit_remaining_day": "0"},
            True,
        ),
        (
            fusebill_error(429, "Rate limit exceeded: 50 requests per minute"),
            {"x_rate_limit_remaining_day": "4950", "x_rate_limit_remaining_minute": "0"},
            False,
        ),
        ({}, {}, False),
    ],
    ids=["daily-body", "minute-body", "daily-header", "minute-header", "empty"],
)
def test_429_tells_the_daily_limit_apart(
    body: dict[str, Any], headers: dict[str, str], daily: bool
) -> None:
    for operation in OPERATIONS:
        verdict = by_operation(operation)(r(429, body, **headers))
        assert verdict.kind is Meaning.RATE_LIMITED
        assert verdict.daily_limit is daily
        assert verdict.message


# --- 2xx to a latch --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201])
def test_latch_2xx_showing_the_geotab_id_sent_is_success(status: int) -> None:
    verdict = classify_latch(r(status, customer()), SENT)
    assert verdict == Verdict(Meaning.SUCCESS, "latched")


LATCH_UNPROVEN: list[tuple[str, Reply, str, str]] = [
    ("html", r(200, HTML), "unconfirmed", "HTML page ('502 Bad Gateway')"),
    ("empty", r(200, ""), "unconfirmed", "empty body"),
    ("no-content", r(204, None), "unconfirmed", "empty body"),
    ("invalid-json", r(200, '{"id": 671201, "geot'), "unconfirmed", "not JSON"),
    ("waf", r(200, {"status": "blocked"}), "unconfirmed", "keys: status"),
    ("list", r(200, [customer()]), "unconfirmed", "not an object"),
    ("no-geotab-id", r(200, {"id": FID, "firstName": "John"}), "unconfirmed", "keys: id"),
    ("too-large", r(200, None, error="too_large"), "unconfirmed", "over 1 MiB"),
    ("other-geotab-id", r(200, customer("909909")), "geotab_id_mismatch", "'909909'"),
    ("number", r(200, customer(909909)), "geotab_id_mismatch", "909909"),
    ("null", r(200, customer(None)), "geotab_id_mismatch", "holds no geotabId"),
    ("padded", r(200, customer(SENT + " ")), "geotab_id_mismatch", "'0909909 '"),
]


@pytest.mark.parametrize(
    ("reply", "error_key", "said"),
    [row[1:] for row in LATCH_UNPROVEN],
    ids=[row[0] for row in LATCH_UNPROVEN],
)
def test_latch_2xx_that_proves_nothing_is_unproven(reply: Reply, error_key: str, said: str) -> None:
    verdict = classify_latch(reply, SENT)
    assert verdict.kind is Meaning.UNPROVEN
    assert verdict.error_key == error_key
    assert said in verdict.message
    assert not verdict.ambiguous and verdict.stop is None


# --- 2xx to a read ---------------------------------------------------------------------------

READ_OK: list[tuple[str, object, Holding]] = [
    ("holds", customer("0909909"), Holding("0909909")),
    ("id-as-text", customer("X1", str(FID)), Holding("X1")),
    ("null", customer(None), Holding(None)),
    ("empty", customer(""), Holding(None)),
    ("no-key", {"id": FID, "firstName": "John"}, Holding(None, known=False)),
    ("number", customer(909909), Holding("909909")),
]


@pytest.mark.parametrize(
    ("body", "holding"), [row[1:] for row in READ_OK], ids=[row[0] for row in READ_OK]
)
def test_read_of_this_customer_says_what_it_holds(body: object, holding: Holding) -> None:
    verdict, held = classify_read(r(200, body), FID)
    assert verdict.kind is Meaning.SUCCESS
    assert held == holding


READ_UNREADABLE: list[tuple[str, Reply, str]] = [
    ("html", r(200, HTML), "HTML page"),
    ("empty", r(200, ""), "empty body"),
    ("invalid-json", r(200, "{not json"), "not JSON"),
    ("list", r(200, [customer()]), "not an object"),
    ("waf", r(200, {"status": "blocked"}), "keys: status"),
    ("another-id", r(200, customer(fusebill_id=123)), "another customer (id 123)"),
    ("no-id", r(200, {"geotabId": SENT}), "keys: geotabId"),
    ("bool-id", r(200, customer(fusebill_id=True)), "another customer"),
    ("padded-id", r(200, customer(fusebill_id=f"0{FID}")), "another customer"),
    ("odd-geotab-id", r(200, customer(["x"])), "not text"),
    ("too-large", r(200, None, error="too_large"), "over 1 MiB"),
]


@pytest.mark.parametrize(
    ("reply", "said"),
    [row[1:] for row in READ_UNREADABLE],
    ids=[row[0] for row in READ_UNREADABLE],
)
def test_read_2xx_that_is_not_this_customer_is_retryable_unreadable(
    reply: Reply, said: str
) -> None:
    verdict, held = classify_read(reply, FID)
    assert held is None
    assert verdict.kind is Meaning.RETRYABLE
    assert verdict.error_key == "unreadable"
    assert not verdict.ambiguous
    assert said in verdict.message


def test_read_matches_ids_exactly() -> None:
    big = 9223372036854775807
    assert classify_read(r(200, customer(fusebill_id=big)), big)[0].kind is Meaning.SUCCESS
    assert classify_read(r(200, customer(fusebill_id=big - 1)), big)[0].kind is Meaning.RETRYABLE
    assert classify_read(r(200, customer(fusebill_id=1)), 1)[0].kind is Meaning.SUCCESS


# --- 2xx to an unlatch -----------------------------------------------------------------------


@pytest.mark.parametrize("held", [None, ""])
def test_unlatch_2xx_showing_this_customer_holding_none_is_success(held: str | None) -> None:
    assert classify_unlatch(r(200, customer(held)), FID).kind is Meaning.SUCCESS


UNLATCH_UNPROVEN: list[tuple[str, Reply, str]] = [
    ("still-holds", r(200, customer(SENT)), "geotab_id_mismatch"),
    ("no-key", r(200, {"id": FID}), "unconfirmed"),
    ("another-id", r(200, customer(None, 123)), "unconfirmed"),
    ("html", r(200, HTML), "unconfirmed"),
    ("empty", r(204, ""), "unconfirmed"),
    ("too-large", r(200, None, error="too_large"), "unconfirmed"),
]


@pytest.mark.parametrize(
    ("reply", "error_key"),
    [row[1:] for row in UNLATCH_UNPROVEN],
    ids=[row[0] for row in UNLATCH_UNPROVEN],
)
def test_unlatch_2xx_that_proves_nothing_is_unproven(reply: Reply, error_key: str) -> None:
    verdict = classify_unlatch(reply, FID)
    assert verdict.kind is Meaning.UNPROVEN
    assert verdict.error_key == error_key


# --- v3: an answer to a write that is not a final one ----------------------------------------

NOT_FINAL = [r(100, ""), r(102, ""), r(103, "", link="</s.css>; rel=preload"), r(304, "")]
WRITES: list[tuple[str, Callable[[Reply], Verdict]]] = [
    ("latch", lambda reply: classify_latch(reply, SENT, FID)),
    ("unlatch", lambda reply: classify_unlatch(reply, FID)),
]


@pytest.mark.parametrize(("operation", "classify"), WRITES, ids=[w[0] for w in WRITES])
@pytest.mark.parametrize("reply", NOT_FINAL, ids=lambda reply: str(reply.status))
def test_a_1xx_or_304_to_a_write_is_an_unknown_outcome_to_read_back(
    operation: str, classify: Callable[[Reply], Verdict], reply: Reply
) -> None:
    verdict = classify(reply)
    assert (verdict.kind, verdict.error_key, verdict.ambiguous, verdict.stop) == (
        Meaning.UNPROVEN,
        "unconfirmed",
        True,
        None,
    )
    assert f"answered {reply.status}" in verdict.message and "may have landed" in verdict.message
    assert "redirect" not in verdict.message


def test_a_304_to_a_read_still_stops_as_a_redirect() -> None:
    verdict, holding = classify_read(r(304, ""), FID)
    assert (verdict.kind, verdict.stop, holding) == (Meaning.STOP, StopReason.REDIRECT, None)


def test_error_text_keeps_every_value() -> None:
    body = {"Errors": [{"Key": "a", "Value": "first"}, {"Key": "b", "Value": "second"}]}
    assert error_text(body) == ("first; second", "a")
    assert error_text({"Errors": "not a list"}) == ("{'Errors': 'not a list'}", "")


# --- times and rate-limit headers ------------------------------------------------------------

NOW = datetime(2024, 3, 1, 12, 0, 45, 500000, tzinfo=timezone.utc)


def headers(**values: str) -> Reply:
    return r(200, None, **values)


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
    reply = headers(date=http_date(NOW.replace(microsecond=0) + timedelta(seconds=1)))
    assert seconds_until("2024-03-01T12:01:00Z", reply, NOW) == pytest.approx(14.5)
    assert seconds_until("2024-03-01T12:01:00Z", headers(), NOW) == pytest.approx(14.5)
    assert seconds_until("garbage", headers(), NOW) is None


@pytest.mark.parametrize("skew", [-3600.0, -3.0, 3.0, 600.0])
def test_seconds_until_measures_against_a_skewed_server_date(skew: float) -> None:
    server_now = NOW.replace(microsecond=0) + timedelta(seconds=skew)
    reset = (server_now + timedelta(seconds=20)).isoformat()
    assert seconds_until(reset, headers(date=http_date(server_now)), NOW) == pytest.approx(20.0)


def test_retry_after_in_seconds() -> None:
    assert retry_after(headers(retry_after="30"), NOW) == 30.0
    assert retry_after(headers(retry_after="2.5"), NOW) == 2.5
    assert retry_after(headers(retry_after="0"), NOW) == 0.0
    assert retry_after(headers(retry_after="-4"), NOW) == 0.0
    assert retry_after(headers(), NOW) is None
    assert retry_after(headers(retry_after="whenever"), NOW) is None
    assert retry_after(headers(retry_after="nan"), NOW) is None


def test_retry_after_as_an_http_date() -> None:
    reply = headers(retry_after=http_date(NOW.replace(microsecond=0) + timedelta(seconds=30)))
    assert retry_after(reply, NOW) == pytest.approx(29.5)
    assert retry_after(headers(retry_after=http_date(NOW - timedelta(minutes=5))), NOW) == 0.0


@pytest.mark.parametrize("skew", [-3600.0, 300.0])
def test_retry_after_date_is_measured_against_a_skewed_server_date(skew: float) -> None:
    server_now = NOW.replace(microsecond=0) + timedelta(seconds=skew)
    reply = headers(
        date=http_date(server_now), retry_after=http_date(server_now + timedelta(seconds=20))
    )
    assert retry_after(reply, NOW) == pytest.approx(20.0)


def test_limits_reads_every_header() -> None:
    seen = limits(
        headers(
            x_rate_limit_limit_minute="50",
            x_rate_limit_limit_day="5000",
            x_rate_limit_remaining_minute="0",
            x_rate_limit_reset_minute="2024-03-01T12:01:00Z",
            x_rate_limit_remaining_day="4321",
            x_rate_limit_reset_day="1709337600",
        ),
        NOW,
    )
    assert seen.reset_minute == pytest.approx(14.5)
    assert seen == Limits(
        remaining_minute=0,
        reset_minute=seen.reset_minute,
        remaining_day=4321,
        reset_day_at=datetime(2024, 3, 2, tzinfo=timezone.utc),
        limit_minute=50,
        limit_day=5000,
    )


@pytest.mark.parametrize(
    "reset",
    [
        "1709294460",
        "1709294460.0",
        "2024-03-01T12:01:00.000Z",
        "2024-03-01T07:01:00-05:00",
        "Fri, 01 Mar 2024 12:01:00 GMT",
    ],
)
def test_limits_reset_minute_in_every_format(reset: str) -> None:
    seen = limits(headers(x_rate_limit_remaining_minute="0", x_rate_limit_reset_minute=reset), NOW)
    assert seen.reset_minute == pytest.approx(14.5)


@pytest.mark.parametrize(
    "reset",
    [None, "garbage", "", "2024-03-01T12:30:00Z", "30"],
    ids=["missing", "garbage", "empty", "half-an-hour-away", "1970"],
)
def test_limits_exhausted_minute_without_a_usable_reset_waits_for_the_next_full_minute(
    reset: str | None,
) -> None:
    values = {"x_rate_limit_remaining_minute": "0"}
    if reset is not None:
        values["x_rate_limit_reset_minute"] = reset
    assert limits(headers(**values), NOW).reset_minute == pytest.approx(14.5)


def test_limits_reset_just_passed_means_no_wait() -> None:
    reply = headers(x_rate_limit_remaining_minute="0", x_rate_limit_reset_minute="1709294444")
    assert limits(reply, NOW).reset_minute == 0.0


def test_limits_reset_minute_with_a_skewed_server_clock() -> None:
    server_now = NOW.replace(microsecond=0) - timedelta(hours=1)
    reply = headers(
        date=http_date(server_now),
        x_rate_limit_remaining_minute="0",
        x_rate_limit_reset_minute=(server_now + timedelta(seconds=12)).isoformat(),
    )
    assert limits(reply, NOW).reset_minute == pytest.approx(12.0)


def test_limits_without_headers() -> None:
    assert limits(headers(), NOW) == Limits(None, None, None, None, None, None)
    assert limits(headers(x_rate_limit_remaining_minute="12"), NOW).reset_minute is None
    assert limits(headers(x_rate_limit_remaining_minute="lots"), NOW).remaining_minute is None
    assert limits(headers(x_rate_limit_limit_day="inf"), NOW).limit_day is None


# --- a Fusebill-format 404 about the route, not the customer ---------------------------------


def _fusebill_404(value: str) -> Reply:
    body = {"ErrorId": 0, "HttpStatusCode": 404, "Errors": [{"Key": "Api Error", "Value": value}]}
    return Reply(404, body, url="https://api.test/Geotab/LatchCustomer")


def test_a_fusebill_404_naming_the_customer_is_not_found() -> None:
    reply = _fusebill_404("Customer with id 1000001 not found.")
    assert classify_latch(reply, "G", 1000001).kind is Meaning.NOT_FOUND
    assert classify_read(reply, 1000001)[0].kind is Meaning.NOT_FOUND
    assert classify_unlatch(reply, 1000001).kind is Meaning.NOT_FOUND


def test_a_fusebill_404_about_the_route_means_the_url_is_wrong() -> None:
    reply = _fusebill_404("Resource not found")
    for verdict in (
        classify_latch(reply, "G", 1000001),
        classify_read(reply, 1000001)[0],
        classify_unlatch(reply, 1000001),
    ):
        assert (verdict.kind, verdict.stop) == (Meaning.STOP, StopReason.WRONG_URL)
        assert "FUSEBILL_BASE_URL" in verdict.message
        assert "https://api.test/Geotab/LatchCustomer" in verdict.message
    # Without the id to compare with, the answer is taken at its word.
    assert classify_latch(reply, "G").kind is Meaning.NOT_FOUND
