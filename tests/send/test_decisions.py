"""One row, decided and carried out: the read-before-write decision table, the latch, and the
read-back that makes a 2xx prove itself (RowLogic against the in-memory Fusebill)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from batch_latch.fusebill.answers import Reply
from batch_latch.jobfolder.rerun_rules import Origin
from batch_latch.outcome import RowOutcome
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.decisions import NO_GEOTAB_FIELD, RowLogic, Task
from batch_latch.send.notices import Notices
from batch_latch.send.progress import Silent
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import Change, Status
from tests.doubles import (
    FakeFusebill,
    Landed,
    Script,
    customer_object,
    dropped,
    error,
    html,
    not_found,
    timeout,
)

FID = 1000001
SENT = "0909909"
OTHER = "G-OLD"
POLICY = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_cap=0.01, pause_floor=0.001)


@dataclass
class Rig:
    fake: FakeFusebill
    logic: RowLogic
    stderr: io.StringIO


def rig(
    fake: FakeFusebill,
    *,
    read_first: bool = True,
    allow_relatch: bool = False,
    write: bool = True,
    policy: RetryPolicy = POLICY,
) -> Rig:
    stderr = io.StringIO()
    attempts = AttemptLoop(Throttle(10_000.0), policy, Notices(Silent(stderr)))
    logic = RowLogic(
        fake, attempts, read_first=read_first, allow_relatch=allow_relatch, write=write
    )
    return Rig(fake, logic, stderr)


def read(geotab_id: str | None) -> Reply:
    return customer_object(FID, geotab_id)


def task(origin: Origin | None = None, geotab_id: str = SENT) -> Task:
    return Task(index=0, fusebill_id=FID, geotab_id=geotab_id, origin=origin)


# --- the decision table ----------------------------------------------------------------------

# What the read finds, as a fake Fusebill.
HOLDS = {
    "none": lambda: FakeFusebill({FID: None}),
    "empty": lambda: FakeFusebill({FID: ""}),
    "same": lambda: FakeFusebill({FID: SENT}),
    "other": lambda: FakeFusebill({FID: OTHER}),
    "no_key": lambda: FakeFusebill({FID: OTHER}, show_geotab=False),
    "404": lambda: FakeFusebill({}),
    "unreadable": lambda: FakeFusebill({FID: None}).always("customer", lambda f: html()),
}


@dataclass(frozen=True)
class Expect:
    status: Status
    change: Change
    key: str
    latches: int  # latch requests sent
    previous: str = ""
    holds_after: str | None = None  # what the fake customer holds afterwards (when known)


def run_expect(found: str, allow: bool) -> Expect:
    return {
        "none": Expect(Status.SUCCESS, Change.NEW, "", 1, "", SENT),
        "empty": Expect(Status.SUCCESS, Change.NEW, "", 1, "", SENT),
        "same": Expect(Status.SUCCESS, Change.UNCHANGED, "", 0, "", SENT),
        "other": (
            Expect(Status.SUCCESS, Change.RELATCH, "", 1, OTHER, SENT)
            if allow
            else Expect(Status.FAILED, Change.NONE, "relatch_refused", 0, OTHER, OTHER)
        ),
        "no_key": Expect(Status.SUCCESS, Change.UNKNOWN, "", 1, "", SENT),
        "404": Expect(Status.NOT_FOUND, Change.NONE, "not_found", 0),
        "unreadable": Expect(Status.FAILED, Change.NONE, "unreadable", 0, "", None),
    }[found]


def plan_expect(found: str) -> Expect:
    return {
        "none": Expect(Status.VALID, Change.NEW, "", 0, "", None),
        "empty": Expect(Status.VALID, Change.NEW, "", 0, "", ""),
        "same": Expect(Status.VALID, Change.UNCHANGED, "", 0, "", SENT),
        "other": Expect(Status.VALID, Change.RELATCH, "", 0, OTHER, OTHER),
        "no_key": Expect(Status.VALID, Change.UNKNOWN, "", 0, "", OTHER),
        "404": Expect(Status.NOT_FOUND, Change.NONE, "not_found", 0),
        "unreadable": Expect(Status.FAILED, Change.NONE, "unreadable", 0, "", None),
    }[found]


def check(outcome: RowOutcome, expect: Expect, fake: FakeFusebill) -> None:
    got = (outcome.status, outcome.change, outcome.error_key, outcome.attempts, outcome.previous)
    assert got == (expect.status, expect.change, expect.key, expect.latches, expect.previous), (
        outcome
    )
    assert fake.count("latch") == expect.latches
    assert fake.count("unlatch") == 0
    if FID in fake.known:
        assert fake.held(FID) == expect.holds_after
    assert outcome.finished_at.endswith("Z")


@pytest.mark.parametrize("allow", [False, True], ids=["refuse", "allow-relatch"])
@pytest.mark.parametrize("found", list(HOLDS))
def test_run_reads_first_then_decides(found: str, allow: bool) -> None:
    r = rig(HOLDS[found](), allow_relatch=allow)
    outcome = r.logic.process(task())
    check(outcome, run_expect(found, allow), r.fake)
    reads = r.fake.count("customer")
    assert reads == (POLICY.max_attempts if found == "unreadable" else 1)
    # The read comes before any write.
    assert r.fake.methods()[0] == "customer"


@pytest.mark.parametrize("allow", [False, True], ids=["refuse", "allow-relatch"])
@pytest.mark.parametrize("found", list(HOLDS))
def test_plan_reads_and_never_writes(found: str, allow: bool) -> None:
    r = rig(HOLDS[found](), allow_relatch=allow, write=False)
    outcome = r.logic.process(task())
    expect = plan_expect(found)
    if found == "other" and allow:
        expect = Expect(Status.VALID, Change.RELATCH, "", 0, OTHER, OTHER)
    check(outcome, expect, r.fake)
    assert set(r.fake.methods()) == {"customer"}


@pytest.mark.parametrize("allow", [False, True], ids=["refuse", "allow-relatch"])
@pytest.mark.parametrize("found", list(HOLDS))
def test_no_read_latches_blind(found: str, allow: bool) -> None:
    fake = HOLDS[found]()
    r = rig(fake, read_first=False, allow_relatch=allow)
    outcome = r.logic.process(task())
    assert r.fake.count("customer") == 0
    assert r.fake.count("latch") == 1
    if found == "404":
        assert (outcome.status, outcome.change, outcome.error_key) == (
            Status.NOT_FOUND,
            Change.NONE,
            "not_found",
        )
    else:
        assert (outcome.status, outcome.change, outcome.previous) == (
            Status.SUCCESS,
            Change.UNKNOWN,
            "",
        )
        assert r.fake.held(FID) == SENT
    assert outcome.attempts == 1


def test_refusal_names_what_the_customer_holds() -> None:
    r = rig(FakeFusebill({FID: OTHER}))
    outcome = r.logic.process(task())
    assert repr(OTHER) in outcome.message
    assert "--allow-relatch" in outcome.message
    assert outcome.http_status == 200


def test_relatch_message_names_what_was_replaced() -> None:
    r = rig(FakeFusebill({FID: OTHER}), allow_relatch=True)
    outcome = r.logic.process(task())
    assert outcome.message == f"latched; replaced {OTHER!r}"


def test_plan_says_a_relatch_would_be_refused() -> None:
    r = rig(FakeFusebill({FID: OTHER}), write=False)
    outcome = r.logic.process(task())
    assert "refuse" in outcome.message and "--allow-relatch" in outcome.message


def test_no_geotab_field_is_said_once_for_many_rows() -> None:
    fake = FakeFusebill({FID: None, FID + 1: None}, show_geotab=False)
    r = rig(fake)
    first = r.logic.process(task())
    second = r.logic.process(Task(1, FID + 1, "X"))
    assert first.change is second.change is Change.UNKNOWN
    assert r.stderr.getvalue().count(NO_GEOTAB_FIELD) == 1


def test_unreadable_message_says_nothing_was_written() -> None:
    r = rig(HOLDS["unreadable"]())
    outcome = r.logic.process(task())
    assert "nothing was written" in outcome.message
    assert "HTML page" in outcome.message


@pytest.mark.parametrize(
    "body",
    [
        {"id": FID + 5, "geotabId": None},  # another customer's object
        ["not", "an", "object"],
        {"id": FID, "geotabId": {"nested": 1}},  # a geotabId that is not text
    ],
    ids=["another-id", "a-list", "odd-geotabId"],
)
def test_a_read_that_is_not_this_customer_is_never_written_blind(body: object) -> None:
    fake = FakeFusebill({FID: None}).always("customer", lambda f: Reply(200, body))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.error_key) == (Status.FAILED, "unreadable")
    assert fake.count("latch") == 0


def test_a_read_that_answers_late_is_retried_then_used() -> None:
    fake = FakeFusebill({FID: None}).script("customer", FID, timeout(), error(503, "busy"))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.change) == (Status.SUCCESS, Change.NEW)
    assert fake.methods() == ["customer"] * 3 + ["latch"]
    assert outcome.attempts == 1  # reads are not latch attempts


def test_origin_from_an_earlier_run_is_kept_as_previous() -> None:
    # This job first changed the customer from "FIRST"; it now holds what the job set.
    r = rig(FakeFusebill({FID: "SET-BY-JOB"}), allow_relatch=True)
    outcome = r.logic.process(task(Origin("FIRST", known=True)))
    assert (outcome.status, outcome.change, outcome.previous) == (
        Status.SUCCESS,
        Change.RELATCH,
        "FIRST",
    )


def test_unchanged_keeps_the_origin_too() -> None:
    r = rig(FakeFusebill({FID: SENT}))
    outcome = r.logic.process(task(Origin("FIRST", known=True)))
    assert (outcome.change, outcome.previous) == (Change.UNCHANGED, "FIRST")


# --- a 2xx must prove itself -----------------------------------------------------------------


def test_a_2xx_carrying_the_geotab_id_is_success_without_a_read_back() -> None:
    r = rig(FakeFusebill({FID: None}))
    outcome = r.logic.process(task())
    assert outcome.message == "latched"
    assert r.fake.methods() == ["customer", "latch"]
    assert outcome.http_status == 200


def test_a_2xx_that_proves_nothing_is_read_back_and_confirmed() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, Landed(html(200)))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.change, outcome.error_key) == (Status.SUCCESS, Change.NEW, "")
    assert "confirmed by read-back" in outcome.message
    assert fake.methods() == ["customer", "latch", "customer"]
    assert outcome.attempts == 1


@pytest.mark.parametrize("status", [103, 304])
def test_a_1xx_or_304_to_a_latch_that_landed_is_read_back_and_confirmed(status: int) -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, Landed(Reply(status, "")))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.change, outcome.error_key) == (Status.SUCCESS, Change.NEW, "")
    assert "confirmed by read-back" in outcome.message
    assert fake.methods() == ["customer", "latch", "customer"]
    assert r.logic.loop.throttle.stop_reason is None  # not a redirect stop


@pytest.mark.parametrize("status", [102, 304])
def test_a_1xx_or_304_to_a_latch_that_did_not_land_fails_unconfirmed(status: int) -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, Reply(status, ""))
    outcome = rig(fake).logic.process(task())
    assert (outcome.status, outcome.error_key) == (Status.FAILED, "unconfirmed")
    assert fake.methods() == ["customer", "latch", "customer"]


def test_a_2xx_then_a_read_back_holding_another_id_is_a_mismatch() -> None:
    # The first read finds none; the read-back finds someone else's latch.
    fake = FakeFusebill({FID: None}).script("latch", FID, html(200))
    fake.script("customer", FID, read(None), read("SOMEONE-ELSE"))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.error_key, outcome.change) == (
        Status.FAILED,
        "geotab_id_mismatch",
        Change.NONE,
    )
    assert "'SOMEONE-ELSE'" in outcome.message


def test_a_2xx_with_another_geotab_id_in_the_body_is_read_back() -> None:
    fake = FakeFusebill({FID: None}).script(
        "latch", FID, Reply(200, {"id": FID, "geotabId": "WRONG"})
    )
    r = rig(fake)
    outcome = r.logic.process(task())
    # Nothing landed: the customer still holds none.
    assert (outcome.status, outcome.error_key) == (Status.FAILED, "unconfirmed")
    assert "read-back could not confirm" in outcome.message
    assert fake.methods() == ["customer", "latch", "customer"]


def test_a_2xx_then_an_unreadable_read_back_is_unconfirmed() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, Landed(html(200)))
    fake.script("customer", FID, read(None))  # the first read; then only HTML
    fake.always("customer", lambda f: html(200, "Portal"))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.error_key) == (Status.FAILED, "unconfirmed")
    assert "read-back could not confirm" in outcome.message
    assert fake.count("customer") == 1 + POLICY.max_attempts


# --- retries that end in a read-back ---------------------------------------------------------


def test_retries_exhausted_after_ambiguous_answers_are_read_back_and_confirmed() -> None:
    fake = FakeFusebill({FID: None}).script(
        "latch", FID, Landed(timeout()), dropped(), error(503, "busy")
    )
    r = rig(fake)
    outcome = r.logic.process(task())
    assert outcome.status is Status.SUCCESS
    assert "confirmed by read-back" in outcome.message and "gave up after 3" in outcome.message
    assert outcome.attempts == 3
    assert fake.methods() == ["customer", "latch", "latch", "latch", "customer"]


def test_retries_exhausted_after_ambiguous_answers_that_did_not_land_fail() -> None:
    fake = FakeFusebill({FID: None}).always("latch", lambda f: timeout())
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.error_key) == (Status.FAILED, "timeout")
    assert "gave up after 3 attempts" in outcome.message
    assert "read-back could not confirm" in outcome.message
    assert fake.methods()[-1] == "customer"


def test_retries_exhausted_without_any_ambiguous_answer_are_not_read_back() -> None:
    fake = FakeFusebill({FID: None}).always("latch", lambda f: error(408, "slow"))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.error_key) == (Status.FAILED, "http_408")
    assert outcome.message.startswith("gave up after 3 attempts")
    assert fake.methods() == ["customer", "latch", "latch", "latch"]


@pytest.mark.parametrize("status", [400, 409])
def test_a_400_or_409_after_an_ambiguous_attempt_is_read_back(status: int) -> None:
    answers: list[Script] = [Landed(dropped()), error(status, "already latched")]
    if status == 409:  # a 409 is retryable: it takes the rest of the attempts
        answers.append(error(409, "already latched"))
    fake = FakeFusebill({FID: None}).script("latch", FID, *answers)
    r = rig(fake)
    outcome = r.logic.process(task())
    assert outcome.status is Status.SUCCESS, outcome
    assert "confirmed by read-back" in outcome.message
    assert fake.methods()[-1] == "customer"


def test_a_400_after_an_ambiguous_attempt_that_did_not_land_fails_with_its_key() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, dropped(), error(400, "not eligible"))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.error_key) == (Status.FAILED, "http_400")
    assert "not eligible" in outcome.message and "read-back" in outcome.message


def test_a_400_without_an_earlier_ambiguous_attempt_is_not_read_back() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, error(400, "not eligible"))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.message, outcome.error_key) == (
        Status.FAILED,
        "not eligible",
        "http_400",
    )
    assert fake.methods() == ["customer", "latch"]


def test_a_404_to_the_latch_is_not_found() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, not_found(FID))
    r = rig(fake)
    outcome = r.logic.process(task())
    assert (outcome.status, outcome.error_key) == (Status.NOT_FOUND, "not_found")
    assert f"Customer with id {FID} not found." in outcome.message


def test_a_row_stopped_between_its_read_and_its_latch_reports_the_reads_status() -> None:
    """ "http_status ... for a row never written, of its read": the budget ran out after the
    read, so the row is pending with the read's 200, not an empty status."""
    stderr = io.StringIO()
    throttle = Throttle(10_000.0, max_requests=1)
    attempts = AttemptLoop(throttle, POLICY, Notices(Silent(stderr)))
    logic = RowLogic(FakeFusebill({FID: None}), attempts)
    outcome = logic.process(task())
    assert (outcome.status, outcome.http_status, outcome.attempts) == (Status.PENDING, 200, 0)


# --- fresh reads: the contract's 60 s --------------------------------------------------------


class Clock:
    """A clock the test moves: the reader stamps its read at 1,000 s; every later look at
    it (the row logic ageing that read before the write) is ``later`` seconds on."""

    def __init__(self, later: float) -> None:
        self.later, self.looks = later, 0

    def __call__(self) -> float:
        self.looks += 1
        return 1_000.0 if self.looks == 1 else 1_000.0 + self.later


def _aged_by(seconds: float) -> FakeFusebill:
    """One row read through the customer list, then written ``seconds`` after that read
    (a pause between): the calls it made."""
    from batch_latch.send.reads import Reader

    fake = FakeFusebill({FID: None})
    attempts = AttemptLoop(Throttle(10_000.0), POLICY, Notices(Silent(io.StringIO())))
    clock = Clock(seconds)
    reader = Reader(fake, attempts, attempts.notices, order=[FID], read_batch=100, clock=clock)
    outcome = RowLogic(fake, attempts, reader=reader).process(task())
    assert outcome.status is Status.SUCCESS, outcome.message
    assert clock.looks >= 2  # the read was stamped and then aged on this clock
    return fake


def test_a_write_on_a_read_older_than_60_seconds_reads_the_customer_again_first() -> None:
    fake = _aged_by(61.0)
    assert [c.method for c in fake.calls] == ["customers", "customer", "latch"]


def test_a_read_a_few_seconds_old_is_written_on_without_another_read() -> None:
    fake = _aged_by(5.0)
    assert [c.method for c in fake.calls] == ["customers", "latch"]
