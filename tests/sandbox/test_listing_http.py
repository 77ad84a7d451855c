"""The customer list over real loopback HTTP: the query string, headers and log on the wire."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from batch_latch.sandbox import PAGING_HEADERS, CustomerList, LoggedRequest

from .helpers import MakeSandbox, assert_rate_headers, error_value


def get_list(
    http: requests.Session, base_url: str, ids: str, **params: int | str
) -> requests.Response:
    # The query as a client writes it: "id:1,2" with the colon and commas left as they are.
    extra = "".join(f"&{name}={value}" for name, value in params.items())
    return http.get(f"{base_url}/customers?query=id:{ids}{extra}", timeout=10)


def paging(response: requests.Response) -> list[str | None]:
    return [response.headers.get(name) for name in PAGING_HEADERS]


def test_full_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(preset={1_000_003: "G3"})
    response = get_list(http, sb.base_url, "1000003,42,1000001,1000002", pageSize=2)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert [(c["id"], c["geotabId"]) for c in response.json()] == [
        (1_000_001, None),
        (1_000_002, None),
    ]
    # Empty headers at the ends arrive as empty values, not as missing headers. By default
    # Fusebill's page taken literally: X-MaxPageIndex 2 pages in all, X-Count 3 results.
    assert paging(response) == ["2", "0", "2", "3", "3", "1", ""]
    assert_rate_headers(response)
    last = get_list(http, sb.base_url, "1000003,42,1000001,1000002", pageSize=2, pageNumber=1)
    assert [(c["id"], c["geotabId"]) for c in last.json()] == [(1_000_003, "G3")]
    assert paging(last) == ["2", "1", "2", "3", "3", "", "0"]
    assert [c["uri"] for c in last.json()] == [f"{sb.base_url}/customers/1000003"]


def test_each_reading_of_the_paging_headers_over_http(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    index = make_sandbox(list_headers="index")
    response = get_list(http, index.base_url, "1000003,42,1000001,1000002", pageSize=2)
    assert paging(response) == ["1", "0", "2", "2", "3", "1", ""]
    none = make_sandbox(list_headers="none")
    response = get_list(http, none.base_url, "1000003,42,1000001,1000002", pageSize=2)
    assert paging(response) == [None] * 7
    assert [c["id"] for c in response.json()] == [1_000_001, 1_000_002]


def test_a_malformed_query_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox()
    response = get_list(http, sb.base_url, "1000001,x")
    assert response.status_code == 400
    assert "'x' is not a customer id" in error_value(response)
    assert_rate_headers(response)
    too_big = get_list(http, sb.base_url, "1000001", pageSize=1001)
    assert too_big.status_code == 400
    assert "pageSize" in error_value(too_big)


def test_ignores_filter_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(customer_list=CustomerList.IGNORES_FILTER)
    response = get_list(http, sb.base_url, "1000500", pageSize=2, pageNumber=1)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == [1_000_001, 1_000_002]
    assert paging(response)[1:5] == ["1", "2", "9000002", "9000002"]


def test_no_geotab_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(customer_list=CustomerList.NO_GEOTAB, preset={1_000_001: "G1"})
    response = get_list(http, sb.base_url, "1000001,1000002")
    assert response.status_code == 200
    assert [sorted(c).count("geotabId") for c in response.json()] == [0, 0]
    assert [c["id"] for c in response.json()] == [1_000_001, 1_000_002]
    assert http.get(f"{sb.base_url}/customers/1000001", timeout=10).json()["geotabId"] == "G1"


def test_missing_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(customer_list=CustomerList.MISSING)
    response = get_list(http, sb.base_url, "1000001")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"Message", "MessageDetail"}
    assert "/v1/customers?query=id:1000001" in body["Message"]
    assert_rate_headers(response)
    assert response.headers.get("X-MaxPageIndex") is None


def test_a_list_counts_once_and_waits_its_latency(
    make_sandbox: MakeSandbox, http: requests.Session
) -> None:
    sb = make_sandbox(profile="testdrive", latency_ms=150)
    ids = ",".join(str(1_000_000 + i) for i in range(300))
    started = time.monotonic()
    response = get_list(http, sb.base_url, ids, pageSize=300)
    assert time.monotonic() - started >= 0.15
    assert len(response.json()) == 300
    assert response.headers["X-Rate-Limit-Remaining-Minute"] == "9"
    assert response.headers["X-Rate-Limit-Remaining-Day"] == "499"


def test_fail_rate_over_http(make_sandbox: MakeSandbox, http: requests.Session) -> None:
    sb = make_sandbox(fail_rate=1.0, seed=3)
    response = get_list(http, sb.base_url, "1000001")
    assert response.status_code in (500, 502, 503)
    assert response.headers.get("X-MaxPageIndex") is None


def test_the_log_records_list_requests(
    make_sandbox: MakeSandbox, http: requests.Session, tmp_path: Path
) -> None:
    log_file = tmp_path / "requests.jsonl"
    sb = make_sandbox(log_path=log_file)
    get_list(http, sb.base_url, "1000002,1000001,5", pageSize=10)
    get_list(http, sb.base_url, "1000001,x")
    http.get(f"{sb.base_url}/customers/1000001", timeout=10)
    entries = sb.requests_log()
    assert [(e.is_list, e.status, e.asked_ids) for e in entries] == [
        (True, 200, (5, 1_000_001, 1_000_002)),
        (True, 400, ()),
        (False, 200, ()),
    ]
    assert entries[0].path == "/v1/customers"
    assert entries[0].query == "query=id:1000002,1000001,5&pageSize=10"
    assert entries[0].note == "list: 2 of 3 asked (2 known), page 0"
    assert (entries[0].fusebill_id, entries[2].query) == (None, "")
    lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert [LoggedRequest(**line) for line in lines] == entries
