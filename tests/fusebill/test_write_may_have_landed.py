"""Which answers to a write leave it possibly landed (``ambiguous``): any 5xx, from 500 up,
whether its body was read or was too large to read; a 408 or a 409 was answered before
anything was written. An ambiguous write is read back before it is called failed."""

from __future__ import annotations

import pytest

from batch_latch.fusebill.answers import Meaning, Reply, ReplyError, classify_latch

GID = "0909909"


@pytest.mark.parametrize("status", [500, 502, 503, 599])
@pytest.mark.parametrize("error", [None, ReplyError.TOO_LARGE])
def test_a_5xx_to_a_write_may_have_landed_from_500_up(
    status: int, error: ReplyError | None
) -> None:
    body = None if error else "Internal Server Error"
    verdict = classify_latch(Reply(status, body, error=error, detail="over the cap"), GID)
    assert (verdict.kind, verdict.error_key) == (Meaning.RETRYABLE, f"http_{status}")
    assert verdict.ambiguous is True


@pytest.mark.parametrize("status", [408, 409])
@pytest.mark.parametrize("error", [None, ReplyError.TOO_LARGE])
def test_a_408_or_409_to_a_write_did_not_land(status: int, error: ReplyError | None) -> None:
    body = None if error else {"Errors": [{"Value": "busy"}]}
    verdict = classify_latch(Reply(status, body, error=error, detail="over the cap"), GID)
    assert (verdict.kind, verdict.error_key) == (Meaning.RETRYABLE, f"http_{status}")
    assert verdict.ambiguous is False
