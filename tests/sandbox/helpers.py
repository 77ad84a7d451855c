"""Helpers shared by the sandbox tests: requests against it, and the checks they repeat."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from batch_latch.sandbox import DEFAULT_API_KEY, Sandbox
from tests.doubles import wait_for

REPO = Path(__file__).resolve().parents[2]
RATE_HEADERS = (
    "X-Rate-Limit-Limit-Minute",
    "X-Rate-Limit-Remaining-Minute",
    "X-Rate-Limit-Reset-Minute",
    "X-Rate-Limit-Limit-Day",
    "X-Rate-Limit-Remaining-Day",
    "X-Rate-Limit-Reset-Day",
)
# Long windows for tests that count: a wall-clock window boundary inside a test is then
# vanishingly unlikely.
LONG = 3600.0
AUTH = {"Authorization": f"Basic {DEFAULT_API_KEY}"}

MakeSandbox = Callable[..., Sandbox]


def latch(
    http: requests.Session, sb: Sandbox, fid: Any, gid: Any, timeout: float = 5.0
) -> requests.Response:
    payload = {"fusebillId": fid, "geotabId": gid}
    return http.post(f"{sb.base_url}/Geotab/LatchCustomer", json=payload, timeout=timeout)


def error_value(response: requests.Response) -> str:
    body = response.json()
    assert body["ErrorId"] == 0
    assert body["HttpStatusCode"] == response.status_code
    assert len(body["Errors"]) >= 1
    return " | ".join(str(e["Value"]) for e in body["Errors"])


def assert_rate_headers(response: requests.Response) -> None:
    for name in (*RATE_HEADERS, "Date", "Content-Length"):
        assert name in response.headers, name


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    wait_for(condition, deadline=timeout)


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
