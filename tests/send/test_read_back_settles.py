"""What a read-back after an unproven latch settles. An outcome ``settles`` when Fusebill's
answer showed what the customer holds; a write left unsettled stays "possibly landed" in
the job (the next command reads it again; undo treats it as maybe written). So:

- the read-back shows the customer holding the row's geotabId: success, settled;
- it shows another geotabId, or none: failed, settled (the customer was seen);
- it could not read the customer: failed, NOT settled (the write may have landed);
- the command stopped before the read-back: pending with the latch's attempts and status.
"""

from __future__ import annotations

import io

from batch_latch.fusebill.answers import Reply
from batch_latch.outcome import RowOutcome
from batch_latch.send.attempt_loop import AttemptLoop
from batch_latch.send.decisions import RowLogic, Task
from batch_latch.send.notices import Notices
from batch_latch.send.progress import Silent
from batch_latch.send.retry import RetryPolicy
from batch_latch.send.throttle import Throttle
from batch_latch.vocab import Change, Status
from tests.doubles import FakeFusebill, Landed, customer_object, html

FID = 1_000_001
SENT = "0909909"
POLICY = RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_cap=0.01, pause_floor=0.001)


def _row(fake: FakeFusebill, max_requests: int | None = None) -> RowOutcome:
    throttle = Throttle(10_000.0, max_requests=max_requests)
    loop = AttemptLoop(throttle, POLICY, Notices(Silent(io.StringIO())))
    return RowLogic(fake, loop).process(Task(index=0, fusebill_id=FID, geotab_id=SENT))


def _read(geotab_id: str | None) -> Reply:
    return customer_object(FID, geotab_id)


def test_a_read_back_holding_the_geotab_id_is_success_and_settles() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, Landed(html(200)))
    got = _row(fake)
    assert (got.status, got.change, got.settles) == (Status.SUCCESS, Change.NEW, True)
    assert got.message.startswith("confirmed by read-back (the answer (HTTP 200)")


def test_a_read_back_holding_another_geotab_id_is_a_settled_mismatch() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, html(200))
    fake.script("customer", FID, _read(None), _read("SOMEONE-ELSE"))
    got = _row(fake)
    assert (got.status, got.error_key, got.settles) == (Status.FAILED, "geotab_id_mismatch", True)
    assert got.message.endswith("; read-back: the customer holds 'SOMEONE-ELSE', not '0909909'")


def test_a_read_back_holding_none_is_failed_unconfirmed_and_settles() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, html(200))  # did not land
    got = _row(fake)
    assert (got.status, got.error_key, got.settles) == (Status.FAILED, "unconfirmed", True)
    assert got.message.endswith("; read-back could not confirm: holds no geotabId")


def test_a_read_back_that_could_not_read_the_customer_leaves_the_write_unsettled() -> None:
    fake = FakeFusebill({FID: None}).script("latch", FID, html(200))
    fake.script("customer", FID, _read(None))  # the first read; then only HTML
    fake.always("customer", lambda f: html(200, "Portal"))
    got = _row(fake)
    assert (got.status, got.error_key, got.settles) == (Status.FAILED, "unconfirmed", False)
    assert "read-back could not confirm: " in got.message
    assert "holds no geotabId" not in got.message


def test_a_command_stopped_before_the_read_back_leaves_the_row_pending_with_its_latch() -> None:
    # Two requests allowed: the read and the latch; the read-back is never sent.
    fake = FakeFusebill({FID: None}).script("latch", FID, Landed(html(200)))
    got = _row(fake, max_requests=2)
    assert (got.status, got.attempts, got.http_status) == (Status.PENDING, 1, 200)
    assert got.settles is False
    assert fake.methods() == ["customer", "latch"]
