"""Reads through Fusebill's customer list (``--read-batch``), through the runner and the
fake service: what a run costs in requests, and the lists it must not trust — each with
customers such that trusting the bad list WOULD write something wrong."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.notices import Notices
from batch_latch.send.progress import Silent
from batch_latch.send.reads import STALE_AFTER, Reader
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import RunKind
from tests.doubles import FakeFusebill, ListMode, error
from tests.send.test_runner import latch

FIRST = 1_000_001


def rows(n: int, start: int = FIRST) -> list[tuple[str, str]]:
    return [(str(start + i), f"GT{i:04d}") for i in range(n)]


def batched(**overrides: Any) -> dict[str, Any]:
    return {"read_batch": 100, **overrides}


def test_a_run_of_new_rows_reads_a_hundred_customers_a_request(tmp_path: Path) -> None:
    pairs = rows(250)
    fake = FakeFusebill({int(f): None for f, _ in pairs})
    outcome, got, err = latch(tmp_path, pairs, fake, **batched())
    assert {r["status"] for r in got} == {"success"}
    assert {r["change"] for r in got} == {"new"}
    assert fake.count("customers") == 3 and fake.count("customer") == 0
    assert fake.count("latch") == 250
    assert (outcome.reads, outcome.writes, outcome.customers_read) == (3, 250, 250)
    assert "253 requests (reads of up to 100 customers a request, then a write each)" in err


def test_rows_already_right_cost_one_request_a_hundred(tmp_path: Path) -> None:
    pairs = rows(250)
    fake = FakeFusebill(dict((int(f), g) for f, g in pairs))
    outcome, got, _ = latch(tmp_path, pairs, fake, **batched())
    assert {(r["status"], r["change"]) for r in got} == {("success", "unchanged")}
    assert outcome.requests == 3 and fake.count("latch") == 0


def test_a_plan_reads_through_the_list(tmp_path: Path) -> None:
    pairs = rows(120)
    fake = FakeFusebill({int(f): None for f, _ in pairs})
    outcome, got, _ = latch(tmp_path, pairs, fake, **batched(kind=RunKind.PLAN))
    assert {r["status"] for r in got} == {"valid"}
    assert outcome.requests == 2 and fake.count("latch") == 0


def test_a_customer_the_list_leaves_out_is_read_alone_and_only_then_not_found(
    tmp_path: Path,
) -> None:
    pairs = rows(4)
    known = {FIRST: None, FIRST + 1: None, FIRST + 3: None}  # FIRST + 2 does not exist
    fake = FakeFusebill(known)
    _, got, _ = latch(tmp_path, pairs, fake, **batched())
    assert [r["status"] for r in got] == ["success", "success", "not_found", "success"]
    assert fake.methods(FIRST + 2) == ["customers", "customer"]


@pytest.mark.parametrize(
    "mode", [ListMode.IGNORES_FILTER, ListMode.UNASKED, ListMode.HTML, ListMode.NOT_FOUND]
)
def test_a_list_that_cannot_be_trusted_turns_every_read_to_one_by_one(
    tmp_path: Path, mode: ListMode
) -> None:
    """The customers hold OLD: believing a bad list's "holds none" would overwrite OLD."""
    pairs = rows(6)
    others = {FIRST - 1 - i: None for i in range(4)}  # the account's other customers
    fake = FakeFusebill({**others, **{int(f): "OLD" for f, _ in pairs}}, list_mode=mode)
    outcome, got, err = latch(tmp_path, pairs, fake, **batched())
    assert {(r["status"], r["error_key"]) for r in got} == {("failed", "relatch_refused")}
    assert fake.count("latch") == 0
    assert 1 <= fake.count("customers") <= 2  # the second page may show the bad object
    assert fake.count("customer") == 6
    assert err.count("cannot be trusted") == 1, err
    assert outcome.stop_reason is None  # never a wrong-URL stop from the list


def test_a_list_without_geotab_ids_is_not_taken_for_customers_holding_none(
    tmp_path: Path,
) -> None:
    pairs = rows(5)
    fake = FakeFusebill({int(f): "OLD" for f, _ in pairs}, list_mode=ListMode.NO_GEOTAB)
    _, got, err = latch(tmp_path, pairs, fake, **batched())
    assert {r["error_key"] for r in got} == {"relatch_refused"}
    assert fake.count("latch") == 0 and fake.count("customer") == 5
    assert err.count("shows no geotabId") == 1, err


def test_a_list_that_leaves_customers_out_costs_a_read_each_for_them_only(
    tmp_path: Path,
) -> None:
    pairs = rows(10)
    fake = FakeFusebill({int(f): "OLD" for f, _ in pairs}, list_mode=ListMode.MISSING)
    _, got, _ = latch(tmp_path, pairs, fake, **batched())
    assert {r["error_key"] for r in got} == {"relatch_refused"}
    assert fake.count("customers") == 1 and fake.count("customer") == 5


@pytest.mark.parametrize("style", ["index", "docs", "none"])
def test_the_next_pages_are_read_too(tmp_path: Path, style: str) -> None:
    pairs = rows(50)
    fake = FakeFusebill({int(f): None for f, _ in pairs}, list_page_size=20, list_headers=style)
    outcome, got, _ = latch(tmp_path, pairs, fake, **batched())
    assert {r["status"] for r in got} == {"success"}
    assert fake.count("customers") == 3 and fake.count("customer") == 0
    assert outcome.customers_read == 50


@pytest.mark.parametrize(("style", "lists"), [("index", 3), ("docs", 3), ("none", 4)])
def test_customers_not_found_on_capped_pages_cost_their_own_read(
    tmp_path: Path, style: str, lists: int
) -> None:
    # 250 rows in three batches; the last 5 customers do not exist; pages capped at 100
    pairs = rows(250)
    known = {int(f): None for f, _ in pairs[:245]}
    fake = FakeFusebill(known, list_page_size=100, list_headers=style)
    _, got, _ = latch(tmp_path, pairs, fake, **batched())
    assert sorted({r["status"] for r in got}) == ["not_found", "success"]
    assert fake.count("customers") == lists and fake.count("customer") == 5
    assert fake.count("latch") == 245


def reader(fake: FakeFusebill, order: list[int], clock: list[float]) -> Reader:
    throttle = Throttle(10_000.0)
    loop = AttemptLoop(throttle, RetryPolicy(max_attempts=1), Notices(Silent(io.StringIO())))
    return Reader(fake, loop, loop.notices, order=order, read_batch=100, clock=lambda: clock[0])


def test_a_batch_read_long_ago_is_read_again_before_it_is_used() -> None:
    ids = [FIRST + i for i in range(3)]
    fake = FakeFusebill(dict.fromkeys(ids))
    now = [100.0]
    r = reader(fake, ids, now)
    assert r.read(ids[0], 0).holding is not None
    now[0] += STALE_AFTER - 1
    assert r.read(ids[1], 1).holding is not None
    assert fake.count("customers") == 1  # still fresh
    now[0] += 2
    got = r.read(ids[2], 2)
    assert got.holding is not None and got.at == now[0]
    assert fake.count("customers") == 2  # read again: the first read grew too old


def test_a_list_that_keeps_failing_fails_its_rows_as_unreadable(tmp_path: Path) -> None:
    pairs = rows(3)
    fake = FakeFusebill({int(f): None for f, _ in pairs}).script_list(error(503, "busy"))
    _, got, _ = latch(tmp_path, pairs, fake, **batched())
    assert {(r["status"], r["error_key"]) for r in got} == {("failed", "unreadable")}
    assert fake.count("latch") == 0


def test_read_batch_one_reads_each_customer_alone(tmp_path: Path) -> None:
    pairs = rows(3)
    fake = FakeFusebill({int(f): None for f, _ in pairs})
    _, got, _ = latch(tmp_path, pairs, fake, read_batch=1)
    assert fake.count("customers") == 0 and fake.count("customer") == 3
    assert {r["status"] for r in got} == {"success"}
