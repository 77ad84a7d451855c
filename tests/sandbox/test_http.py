"""The sandbox over real loopback HTTP: clients are tested against it, so it must be right."""

from __future__ import annotations

import email.utils
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from batch_latch.sandbox import (
    DEFAULT_API_KEY,
    EXTRA_CUSTOMER_IDS,
    LoggedRequest,
    Sandbox,
    SandboxConfig,
    is_known_customer,
)

from .helpers import (
    LONG,
    MakeSandbox,
    assert_rate_headers,
    error_value,
    latch,
    parse_iso,
    wait_until,
)

# --- the happy path --------------------------------------------------------------------------


def test_latch_answers_a_fusebill_shaped_customer_and_remembers(
    sandbox: Sandbox, http: requests.Session
) -> None:
    assert sandbox.geotab_id_of(1_000_001) is None
    response = latch(http, sandbox, 1_000_001, "0909909")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert_rate_headers(response)
    body = response.json()
    for key in ("firstName", "lastName", "companyName", "status", "currency", "createdTimestamp"):
        assert body[key]
    assert body["geotabId"] == "0909909"
    assert body["id"] == 1_000_001
    assert body["uri"] == f"{sandbox.base_url}/customers/1000001"
    assert body["uri"].startswith("http://127.0.0.1:")
    assert body["customerReference"]["id"] == 1_000_001
    assert body["modifiedTimestamp"].endswith("Z")
    assert sandbox.geotab_id_of(1_000_001) == "0909909"
    # Keep-alive HTTP/1.1, so client timings are not dominated by connection setup.
    assert response.raw.version == 11
    assert response.headers.get("Connection", "").lower() != "close"


def test_latching_again_is_idempotent_by_default(sandbox: Sandbox, http: requests.Session) -> None:
    assert latch(http, sandbox, 1_000_002, "A").status_code == 200
    again = latch(http, sandbox, 1_000_002, "A")
    assert again.status_code == 200
    assert again.json()["geotabId"] == "A"
    changed = latch(http, sandbox, 1_000_002, "B")
    assert changed.json()["geotabId"] == "B"
    assert sandbox.geotab_id_of(1_000_002) == "B"


def test_known_customers_are_the_documented_range_and_the_sample_ids() -> None:
    assert is_known_customer(1_000_000)
    assert is_known_customer(9_999_999)
    assert not is_known_customer(999_999)
    assert not is_known_customer(10_000_000)
    assert sorted(EXTRA_CUSTOMER_IDS) == [671_201, 12_717_595]
    assert all(is_known_customer(fid) for fid in EXTRA_CUSTOMER_IDS)


def test_sample_ids_can_be_latched(sandbox: Sandbox, http: requests.Session) -> None:
    for fid in sorted(EXTRA_CUSTOMER_IDS):
        response = latch(http, sandbox, fid, "1234")
        assert response.status_code == 200
        assert response.json()["id"] == fid


def test_unknown_customer_is_404_in_fusebills_format(
    sandbox: Sandbox, http: requests.Session
) -> None:
    response = latch(http, sandbox, 123, "X")
    assert response.status_code == 404
    assert response.json() == {
        "ErrorId": 0,
        "HttpStatusCode": 404,
        "Errors": [{"Key": "Api Error", "Value": "Customer with id 123 not found."}],
    }
    assert_rate_headers(response)


def test_paths_match_ignoring_case(sandbox: Sandbox, http: requests.Session) -> None:
    url = sandbox.base_url.replace("/v1", "/V1") + "/geotab/latchcustomer"
    response = http.post(url, json={"fusebillId": 1_000_003, "geotabId": "C"}, timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/Geotab/LatchCustomer"),
        ("POST", "/Geotab/Nope"),
        ("GET", "/customers/abc"),
        ("DELETE", "/customers/1000001"),
        ("GET", "/../etc/passwd"),
    ],
)
def test_anything_else_is_404_resource_not_found(
    sandbox: Sandbox, http: requests.Session, method: str, path: str
) -> None:
    response = http.request(method, sandbox.base_url + path, timeout=5)
    assert response.status_code == 404
    assert error_value(response) == "Resource not found"
    assert_rate_headers(response)


# --- bad requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"fusebillId": "1000001", "geotabId": "X"}, "integer"),
        ({"fusebillId": 1000001.0, "geotabId": "X"}, "integer"),
        ({"fusebillId": True, "geotabId": "X"}, "integer"),
        ({"fusebillId": 0, "geotabId": "X"}, "greater than or equal to 1"),
        ({"fusebillId": 1000001, "geotabId": "G" * 256}, "at most 255"),
        ({"fusebillId": 1000001, "geotabId": ""}, "at least 1"),
        ({"fusebillId": 1000001, "geotabId": 1234}, "string"),
        ({"fusebillId": 1000001}, "required"),
        ([1000001, "X"], "JSON object"),
    ],
)
def test_invalid_body_is_400(
    sandbox: Sandbox, http: requests.Session, body: Any, expected: str
) -> None:
    url = f"{sandbox.base_url}/Geotab/LatchCustomer"
    response = http.post(url, json=body, timeout=5)
    assert response.status_code == 400
    assert expected in error_value(response)
    assert sandbox.geotab_id_of(1_000_001) is None
    assert_rate_headers(response)


def test_geotab_id_of_exactly_255_characters_is_accepted(
    sandbox: Sandbox, http: requests.Session
) -> None:
    response = latch(http, sandbox, 1_000_001, "G" * 255)
    assert response.status_code == 200
    assert sandbox.geotab_id_of(1_000_001) == "G" * 255


@pytest.mark.parametrize("raw", [b"{fusebillId:1000001,geotabId:'X'}", b"", b"{", b"\xff"])
def test_bad_json_is_400(sandbox: Sandbox, http: requests.Session, raw: bytes) -> None:
    response = http.post(
        f"{sandbox.base_url}/Geotab/LatchCustomer",
        data=raw,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "JSON" in error_value(response)
    # The connection stays usable after a 400.
    assert latch(http, sandbox, 1_000_001, "X").status_code == 200


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic wrong-key"},
        {"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        {"Authorization": f"Basic {DEFAULT_API_KEY} "},
        {"Authorization": f"basic {DEFAULT_API_KEY}"},
    ],
)
def test_wrong_or_missing_key_is_401_and_uses_up_nothing(
    sandbox: Sandbox, http: requests.Session, headers: dict[str, str]
) -> None:
    before = http.get(f"{sandbox.base_url}/customers/1000001", timeout=5)
    url = f"{sandbox.base_url}/Geotab/LatchCustomer"
    response = requests.post(
        url, json={"fusebillId": 1_000_001, "geotabId": "X"}, headers=headers, timeout=5
    )
    assert response.status_code == 401
    assert error_value(response)
    assert DEFAULT_API_KEY not in response.text
    assert_rate_headers(response)
    assert (
        response.headers["X-Rate-Limit-Remaining-Day"]
        == before.headers["X-Rate-Limit-Remaining-Day"]
    )
    assert sandbox.geotab_id_of(1_000_001) is None


def test_custom_api_key(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(api_key="my-rehearsal-key")
    url = f"{sb.base_url}/customers/1000001"
    assert (
        requests.get(url, headers={"Authorization": "Basic sandbox-key"}, timeout=5).status_code
        == 401
    )
    ok = requests.get(url, headers={"Authorization": "Basic my-rehearsal-key"}, timeout=5)
    assert ok.status_code == 200


# --- limits ----------------------------------------------------------------------------------


def test_rate_headers_count_down(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(profile="sandbox")
    seen: list[tuple[int, int]] = []
    for i in range(5):
        response = latch(http, sb, 1_000_001 + i, "X")
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit-Limit-Minute"] == "50"
        assert response.headers["X-Rate-Limit-Limit-Day"] == "5000"
        seen.append(
            (
                int(response.headers["X-Rate-Limit-Remaining-Minute"]),
                int(response.headers["X-Rate-Limit-Remaining-Day"]),
            )
        )
    assert seen == [(49, 4999), (48, 4998), (47, 4997), (46, 4996), (45, 4995)]


def test_live_profile_is_the_default() -> None:
    config = SandboxConfig()
    assert (config.limits.per_minute, config.limits.per_day) == (1000, 180_000)
    assert config.api_key == DEFAULT_API_KEY
    assert config.host == "127.0.0.1"


def test_over_the_minute_limit_is_429_naming_it(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(profile="testdrive")
    statuses = [latch(http, sb, 1_000_001 + i, "X").status_code for i in range(10)]
    assert statuses == [200] * 10
    response = latch(http, sb, 1_000_050, "X")
    assert response.status_code == 429
    value = error_value(response)
    assert value.startswith("Rate limit exceeded: 10 requests per minute")
    assert "Daily" not in value
    assert "Retry-After" not in response.headers
    assert_rate_headers(response)
    assert response.headers["X-Rate-Limit-Remaining-Minute"] == "0"
    # A 429 uses up nothing and changes nothing.
    assert response.headers["X-Rate-Limit-Remaining-Day"] == "490"
    assert sb.geotab_id_of(1_000_050) is None
    again = latch(http, sb, 1_000_050, "X")
    assert again.headers["X-Rate-Limit-Remaining-Day"] == "490"


def test_retry_after_only_when_asked(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(profile="testdrive", retry_after=True)
    for i in range(10):
        assert "Retry-After" not in latch(http, sb, 1_000_001 + i, "X").headers
    response = latch(http, sb, 1_000_050, "X")
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= LONG


def test_minute_window_frees_at_its_reset(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    # A 2 s "minute": 11 latches must fit in one, even on a loaded machine (in a 0.25 s one
    # they did not: every window ended before its 11th request, and none was refused).
    sb = make_sandbox(profile="testdrive", minute_seconds=2.0, reset_format="epoch")
    refused = None
    for _ in range(60):  # a window may end mid-burst; keep going until one is refused
        response = latch(http, sb, 1_000_001, "X")
        if response.status_code == 429:
            refused = response
            break
    assert refused is not None
    reset = float(refused.headers["X-Rate-Limit-Reset-Minute"])
    assert "sandbox minute" in error_value(refused)
    wait_until(lambda: time.time() >= reset)
    after = latch(http, sb, 1_000_001, "X")
    assert after.status_code == 200
    assert int(after.headers["X-Rate-Limit-Remaining-Minute"]) == 9


def test_daily_limit_is_429_naming_daily(make_sandbox: MakeSandbox) -> None:
    # A generous token bucket takes the minute limit out of the way of testdrive's 500 a day.
    sb = make_sandbox(profile="testdrive", rate_limit=1000)
    url = f"{sb.base_url}/customers/1000001"
    headers = {"Authorization": f"Basic {DEFAULT_API_KEY}"}
    codes: list[int] = []
    last: dict[str, requests.Response] = {}

    def worker() -> None:
        with requests.Session() as session:
            session.headers.update(headers)
            for _ in range(125):
                response = session.get(url, timeout=5)
                codes.append(response.status_code)
                if response.headers["X-Rate-Limit-Remaining-Day"] == "0":
                    last["zero"] = response

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) == 500
    assert "zero" in last
    response = requests.get(url, headers=headers, timeout=5)
    assert response.status_code == 429
    assert error_value(response) == "Daily rate limit exceeded: 500 requests per day"
    assert response.headers["X-Rate-Limit-Remaining-Day"] == "0"
    reset_day = parse_iso(response.headers["X-Rate-Limit-Reset-Day"])
    assert reset_day % 86_400 == 0
    assert 0 < reset_day - time.time() <= 86_400


def test_token_bucket_refuses_a_burst_beyond_capacity(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(rate_limit=4, reset_format="epoch")
    responses = [latch(http, sb, 1_000_001, "X") for _ in range(8)]
    codes = [r.status_code for r in responses]
    assert codes[:4] == [200] * 4
    assert 429 in codes
    refused = next(r for r in responses if r.status_code == 429)
    assert error_value(refused) == "Rate limit exceeded: 4 requests per second"
    assert responses[0].headers["X-Rate-Limit-Limit-Minute"] == "240"
    assert responses[0].headers["X-Rate-Limit-Remaining-Minute"] == "3"
    assert refused.headers["X-Rate-Limit-Remaining-Minute"] == "0"
    next_token = float(refused.headers["X-Rate-Limit-Reset-Minute"])
    assert next_token - time.time() <= 0.25 + 0.05
    wait_until(lambda: time.time() >= next_token)
    assert latch(http, sb, 1_000_001, "X").status_code == 200


def test_token_bucket_never_refuses_a_client_at_its_rate(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    # More requests than the bucket holds, so only the refill keeps them all under the limit.
    sb = make_sandbox(rate_limit=100)
    start = time.monotonic()
    for i in range(130):
        due = start + i / 100
        wait_until(lambda: time.monotonic() >= due)  # noqa: B023 (used at once)
        response = latch(http, sb, 1_000_001, "X")
        assert response.status_code == 200, i


def test_reset_formats_parse(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    now = time.time()
    iso = latch(http, make_sandbox(reset_format="iso"), 1_000_001, "X").headers
    epoch = latch(http, make_sandbox(reset_format="epoch"), 1_000_001, "X").headers
    date = latch(http, make_sandbox(reset_format="http"), 1_000_001, "X").headers
    next_midnight = (now // 86_400 + 1) * 86_400
    assert parse_iso(iso["X-Rate-Limit-Reset-Day"]) == next_midnight
    assert float(epoch["X-Rate-Limit-Reset-Day"]) == next_midnight
    parsed = email.utils.parsedate_to_datetime(date["X-Rate-Limit-Reset-Day"])
    assert parsed.timestamp() == next_midnight
    for reset in (
        parse_iso(iso["X-Rate-Limit-Reset-Minute"]),
        float(epoch["X-Rate-Limit-Reset-Minute"]),
        email.utils.parsedate_to_datetime(date["X-Rate-Limit-Reset-Minute"]).timestamp(),
    ):
        assert now < reset <= now + LONG + 1
        assert reset % LONG == 0
    assert email.utils.parsedate_to_datetime(date["Date"]).tzinfo is not None


def test_iso_reset_has_milliseconds(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    headers = latch(http, make_sandbox(minute_seconds=60), 1_000_001, "X").headers
    text = headers["X-Rate-Limit-Reset-Minute"]
    assert len(text) == len("2026-11-27T03:23:00.000Z")
    assert text.endswith(":00.000Z")


# --- faults ----------------------------------------------------------------------------------


def test_fail_rate_answers_5xx_and_changes_nothing(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(fail_rate=1.0, seed=7)
    statuses = set()
    for _ in range(12):
        response = latch(http, sb, 1_000_001, "X")
        assert response.status_code in (500, 502, 503)
        assert error_value(response)
        assert_rate_headers(response)
        statuses.add(response.status_code)
    assert len(statuses) > 1
    assert sb.geotab_id_of(1_000_001) is None


def test_seeded_faults_are_reproducible(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    def run() -> list[int]:
        sb = make_sandbox(fail_rate=0.5, seed=42)
        return [latch(http, sb, 1_000_001, "X").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 200 in first
    assert set(first) - {200}


def test_drop_rate_applies_then_hangs_up(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(drop_rate=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        latch(http, sb, 1_000_001, "DROPPED")
    assert sb.geotab_id_of(1_000_001) == "DROPPED"
    entry = sb.requests_log()[-1]
    assert entry.status is None
    assert entry.fusebill_id == 1_000_001
    assert "dropped" in entry.note


def test_stall_first_times_the_client_out_although_the_latch_landed(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(stall_first_ms=10_000)
    with pytest.raises(requests.exceptions.Timeout):
        latch(http, sb, 1_000_001, "SLOW", timeout=0.3)
    assert sb.geotab_id_of(1_000_001) == "SLOW"
    # Only the first latch per customer stalls.
    started = time.monotonic()
    again = latch(http, sb, 1_000_001, "SLOW", timeout=5)
    assert again.status_code == 200
    assert time.monotonic() - started < 4  # a stalled one would time out at 5 s


def test_relatch_status_refuses_a_repeat(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(relatch_status=409)
    assert latch(http, sb, 1_000_001, "X").status_code == 200
    repeat = latch(http, sb, 1_000_001, "X")
    assert repeat.status_code == 409
    assert error_value(repeat) == "Customer 1000001 is already latched to Geotab ID X"
    assert sb.geotab_id_of(1_000_001) == "X"
    assert latch(http, sb, 1_000_001, "Y").status_code == 200


def test_stall_then_relatch_is_the_ambiguous_outcome(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(stall_first_ms=10_000, relatch_status=400)
    with pytest.raises(requests.exceptions.Timeout):
        latch(http, sb, 1_000_001, "X", timeout=0.3)
    assert latch(http, sb, 1_000_001, "X").status_code == 400
    read_back = http.get(f"{sb.base_url}/customers/1000001", timeout=5)
    assert read_back.json()["geotabId"] == "X"


def test_mismatch_ids_answer_another_geotab_id(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(mismatch_ids=frozenset({1_000_001}))
    response = latch(http, sb, 1_000_001, "X")
    assert response.status_code == 200
    assert response.json()["geotabId"] == "OTHER-X"
    assert sb.geotab_id_of(1_000_001) == "OTHER-X"
    assert latch(http, sb, 1_000_002, "Y").json()["geotabId"] == "Y"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, "not eligible"), (403, "Forbidden"), (409, "1000001"), (500, "")],
)
def test_force_status(
    make_sandbox: MakeSandbox, http: requests.Session, status: int, expected: str
) -> None:
    sb = make_sandbox(force_status={1_000_001: status})
    response = latch(http, sb, 1_000_001, "X")
    assert response.status_code == status
    assert expected in error_value(response)
    assert sb.geotab_id_of(1_000_001) is None
    assert latch(http, sb, 1_000_002, "X").status_code == 200


def test_latency_delays_every_answer(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(latency_ms=150)
    started = time.monotonic()
    assert http.get(f"{sb.base_url}/customers/1000001", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_answers_are_fast_on_keep_alive(sandbox: Sandbox, http: requests.Session) -> None:
    # With Nagle's algorithm on and the head and body sent apart, each keep-alive answer
    # waits ~40 ms for a delayed ACK: a median of ~48 ms, against ~15 ms at load 8. A loaded
    # machine can push one round's median past 30 ms too (31 ms seen at load 11), but not
    # three rounds': the penalty is in every round, the load's noise is not.
    medians = []
    for _ in range(3):
        times = []
        for i in range(15):
            started = time.perf_counter()
            latch(http, sandbox, 1_000_001, f"G{i}")
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
        if medians[-1] < 0.03:
            break
    assert min(medians) < 0.03, medians


# --- the other endpoints ----------------------------------------------------------------------


def test_get_customer(sandbox: Sandbox, http: requests.Session) -> None:
    url = f"{sandbox.base_url}/customers/1000001"
    first = http.get(url, timeout=5)
    assert first.status_code == 200
    assert first.json()["geotabId"] is None
    assert first.json()["id"] == 1_000_001
    assert_rate_headers(first)
    latch(http, sandbox, 1_000_001, "0001234")
    assert http.get(url, timeout=5).json()["geotabId"] == "0001234"
    missing = http.get(f"{sandbox.base_url}/customers/123", timeout=5)
    assert missing.status_code == 404
    assert error_value(missing) == "Customer with id 123 not found."


def test_unlatch(sandbox: Sandbox, http: requests.Session) -> None:
    url = f"{sandbox.base_url}/Geotab/UnlatchCustomer"
    latch(http, sandbox, 1_000_001, "X")
    response = http.post(url, json={"fusebillId": 1_000_001}, timeout=5)
    assert response.status_code == 200
    assert response.json()["geotabId"] is None
    assert sandbox.geotab_id_of(1_000_001) is None
    assert http.post(url, json={"fusebillId": 55}, timeout=5).status_code == 404
    assert http.post(url, json={"fusebillId": "1000001"}, timeout=5).status_code == 400


def test_set_geotab_id_arranges_state(sandbox: Sandbox, http: requests.Session) -> None:
    sandbox.set_geotab_id(1_000_001, "PRE")
    assert http.get(f"{sandbox.base_url}/customers/1000001", timeout=5).json()["geotabId"] == "PRE"
    with pytest.raises(ValueError):
        sandbox.set_geotab_id(5, "X")


def test_concurrent_latches_are_all_recorded(sandbox: Sandbox, http: requests.Session) -> None:
    def worker(base: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Basic {DEFAULT_API_KEY}"
            for i in range(20):
                assert latch(session, sandbox, base + i, f"G{base + i}").status_code == 200

    threads = [threading.Thread(target=worker, args=(1_000_000 + 100 * n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(
        sandbox.geotab_id_of(1_000_000 + 100 * n + i) == f"G{1_000_000 + 100 * n + i}"
        for n in range(6)
        for i in range(20)
    )
    last = http.get(f"{sandbox.base_url}/customers/1000000", timeout=5)
    assert last.headers["X-Rate-Limit-Remaining-Day"] == str(180_000 - 121)


# --- request log -----------------------------------------------------------------------------


def test_request_log_in_memory_and_as_json_lines(
    make_sandbox: MakeSandbox, http: requests.Session, tmp_path: Path
) -> None:
    log_file = tmp_path / "requests.jsonl"
    sb = make_sandbox(log_path=log_file)
    latch(http, sb, 1_000_001, "X")
    latch(http, sb, 123, "Y")
    requests.get(f"{sb.base_url}/customers/1000001", timeout=5)  # no key
    entries = sb.requests_log()
    assert [(e.method, e.fusebill_id, e.geotab_id, e.status) for e in entries] == [
        ("POST", 1_000_001, "X", 200),
        ("POST", 123, "Y", 404),
        ("GET", 1_000_001, None, 401),
    ]
    assert entries[0].path == "/v1/Geotab/LatchCustomer"
    assert all(isinstance(e, LoggedRequest) and e.at <= time.time() for e in entries)
    entries.clear()  # a copy
    assert len(sb.requests_log()) == 3
    # Flushed per line: readable before the sandbox stops.
    lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert [LoggedRequest(**line) for line in lines] == sb.requests_log()
    assert DEFAULT_API_KEY not in log_file.read_text(encoding="utf-8")


def test_stop_hangs_up_idle_keep_alive_connections(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox()
    url = f"{sb.base_url}/customers/1000001"
    assert http.get(url, timeout=5).status_code == 200
    sb.stop()
    sb.stop()  # twice is fine
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(url, timeout=5)
