"""The contract's freshness bound, as its own numbers: "no customer is written on a read
more than 60 s old". Every age here is a literal (61 s, 5 s), never ``STALE_AFTER``
imported from the code, so a bound moved past 60 s fails these tests.

One clock, injected into the ``Reader``, stamps the reads and ages them: the batch of the
customer list, the row logic's last look before a write. ``run``'s last look is pinned in
``test_decisions.py`` (61 s and 5 s too); ``run --plan`` takes its own path to the write,
pinned here."""

from __future__ import annotations

import io

import pytest

from batch_latch.jobfolder.plans import PlanEntry
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.decisions import RowLogic, Task
from batch_latch.send.notices import Notices
from batch_latch.send.progress import Silent
from batch_latch.send.reads import Reader
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import Change, Status
from tests.doubles import FakeFusebill

FIRST = 1_000_001
SENT = "0909909"
POLICY = RetryPolicy(max_attempts=1)


class Clock:
    """Seconds the test sets; the reader and the row logic both look at it."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _loop() -> AttemptLoop:
    return AttemptLoop(Throttle(10_000.0), POLICY, Notices(Silent(io.StringIO())))


def _reader(fake: FakeFusebill, order: list[int], clock: Clock) -> Reader:
    loop = _loop()
    return Reader(fake, loop, loop.notices, order=order, read_batch=100, clock=clock)


# --- the customer list's batch ---------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "lists"), [(5.0, 1), (61.0, 2)])
def test_a_batch_read_more_than_60_seconds_ago_is_read_again_before_it_is_used(
    seconds: float, lists: int
) -> None:
    ids = [FIRST, FIRST + 1]
    fake = FakeFusebill(dict.fromkeys(ids))
    clock = Clock()
    reader = _reader(fake, ids, clock)
    assert reader.read(ids[0], 0).holding is not None
    clock.now += seconds
    second = reader.read(ids[1], 1)
    assert second.holding is not None
    assert fake.count("customers") == lists
    assert second.at == (clock.now if lists == 2 else 1_000.0)  # the read it was given


# --- the last look before a write ------------------------------------------------------------


class Pausing(Clock):
    """A clock that jumps ``pause`` seconds once the first read has been stamped: a pause
    between a row's read and its write."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.pause, self.looks = pause, 0

    def __call__(self) -> float:
        self.looks += 1
        return self.now if self.looks == 1 else self.now + self.pause


def _written_after(pause: float, planned: PlanEntry) -> list[str]:
    """``run --plan``: one new customer read through the list, then written ``pause``
    seconds on: the requests the row made, in order."""
    fake = FakeFusebill({FIRST: None})
    loop = _loop()
    clock = Pausing(pause)
    reader = Reader(fake, loop, loop.notices, order=[FIRST], read_batch=100, clock=clock)
    logic = RowLogic(fake, loop, reader=reader, apply_plan=True)
    row = Task(index=0, fusebill_id=FIRST, geotab_id=SENT, planned=planned)
    outcome = logic.process(row)
    assert (outcome.status, outcome.change) == (Status.SUCCESS, Change.NEW), outcome.message
    assert fake.held(FIRST) == SENT
    return [call.method for call in fake.calls]


PLANNED_NEW = PlanEntry(SENT, Status.VALID.value, Change.NEW.value, "")


def test_run_plan_writes_on_a_read_5_seconds_old_without_reading_again() -> None:
    assert _written_after(5.0, PLANNED_NEW) == ["customers", "latch"]


def test_run_plan_reads_the_customer_again_when_its_read_is_61_seconds_old() -> None:
    assert _written_after(61.0, PLANNED_NEW) == ["customers", "customer", "latch"]
