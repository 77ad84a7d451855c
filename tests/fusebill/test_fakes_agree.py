"""The in-memory Fusebill (``tests.doubles.FakeFusebill``, behind most unit tests) and the
sandbox (the real HTTP stand-in, behind the integration tests) agree: the same scripted
scenarios, driven through the service seam and judged by the tool's own classifiers, see the
same things. A change to one of them that the other does not share fails here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from batch_latch.fusebill.answers import (
    Reply,
    classify_latch,
    classify_read,
    classify_unlatch,
)
from batch_latch.fusebill.client import FusebillClient
from batch_latch.fusebill.listing import classify_list
from batch_latch.fusebill.ratelimits import limits
from batch_latch.fusebill.service import FusebillService
from batch_latch.sandbox import Sandbox, SandboxConfig
from tests.doubles import FakeFusebill

KEY = "sk_test_AGREE_0123456789"
NEW, HELD, GONE = 1_000_001, 1_000_002, 99  # no geotabId; holds one; not a customer
PRESET = {HELD: "GT-OLD"}


def _read(service: FusebillService, fid: int) -> tuple[str, Any]:
    verdict, holding = classify_read(service.customer(fid), fid)
    return str(verdict.kind.name), (holding.geotab_id, holding.known) if holding else None


def _scenario(service: FusebillService) -> list[Any]:
    """Everything a run, a plan and an undo ask of Fusebill, in one story."""
    seen: list[Any] = [_read(service, NEW), _read(service, HELD), _read(service, GONE)]
    page = classify_list(service.customers([NEW, HELD, GONE]), [NEW, HELD, GONE])
    held = {fid: (h.geotab_id, h.known) for fid, h in page.holdings.items()}
    seen.append((page.verdict.kind.name, held, list(page.read_alone), page.next_page))
    seen.append(classify_latch(service.latch(NEW, "GT-NEW"), "GT-NEW", NEW).kind.name)
    seen.append(_read(service, NEW))
    seen.append(classify_latch(service.latch(HELD, "GT-NEW2"), "GT-NEW2", HELD).kind.name)
    seen.append(_read(service, HELD))
    seen.append(classify_latch(service.latch(GONE, "GT-X"), "GT-X", GONE).error_key)
    seen.append(classify_unlatch(service.unlatch(NEW), NEW).kind.name)
    seen.append(_read(service, NEW))
    return seen


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    server = Sandbox(SandboxConfig(api_key=KEY, preset=PRESET)).start()
    yield server
    server.stop()


def test_the_fake_and_the_sandbox_tell_the_same_story(sandbox: Sandbox) -> None:
    fake = FakeFusebill({NEW: None, **PRESET}, key=KEY, list_headers="docs")
    client = FusebillClient(sandbox.base_url, KEY, timeout=10.0, env={})
    try:
        over_http = _scenario(client)
    finally:
        client.close()
    in_memory = _scenario(fake)
    assert in_memory == over_http
    # and the story is the one the contract tells (so both are not merely equally wrong)
    assert over_http[0] == ("SUCCESS", (None, True))
    assert over_http[1] == ("SUCCESS", ("GT-OLD", True))
    assert over_http[2][0] == "NOT_FOUND"
    assert over_http[3][1] == {NEW: (None, True), HELD: ("GT-OLD", True)}
    assert over_http[5] == ("SUCCESS", ("GT-NEW", True))
    assert over_http[-1] == ("SUCCESS", (None, True))


def _daily_429(reset: datetime) -> Reply:
    """How the unit tests script a spent daily quota (tests/send/test_attempt_loop.py)."""
    return Reply(
        429,
        {"Errors": [{"Value": "Daily rate limit exceeded: 5000 requests per day"}]},
        {"x-rate-limit-reset-day": f"{reset.timestamp():.3f}"},
    )


def _judged(reply: Reply) -> tuple[str, bool, bool]:
    verdict = classify_latch(reply, "GT-1", NEW)
    reset = limits(reply, datetime.now(timezone.utc)).reset_day_at
    return verdict.kind.name, verdict.daily_limit, reset is not None


def test_a_spent_daily_quota_reads_the_same_from_the_fake_script_and_the_sandbox() -> None:
    server = Sandbox(SandboxConfig(api_key=KEY, day_limit=1)).start()
    client = FusebillClient(server.base_url, KEY, timeout=10.0, env={})
    try:
        client.customer(NEW)  # the day's one request
        spent = client.latch(NEW, "GT-1")
    finally:
        client.close()
        server.stop()
    assert spent.status == 429
    scripted = _daily_429(datetime.now(timezone.utc) + timedelta(hours=3))
    assert _judged(scripted) == _judged(spent) == ("RATE_LIMITED", True, True)
