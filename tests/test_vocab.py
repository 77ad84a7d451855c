"""Every vocabulary member has its words: a new status or stop reason without a label or
advice fails here, not in front of a user."""

from __future__ import annotations

import json

import pytest

from batch_latch.vocab import (
    SIGNAL_NAMES,
    SIGNAL_STOPS,
    STATUS_LABELS,
    STOP_ADVICE,
    Change,
    RunKind,
    Status,
    StopReason,
)


def test_every_status_has_a_summary_label() -> None:
    assert set(STATUS_LABELS) == set(Status)
    assert STATUS_LABELS[Status.NOT_FOUND] == "not found (404)"


def test_every_stop_reason_has_advice() -> None:
    assert set(STOP_ADVICE) == set(StopReason)
    assert all(text and not text.endswith(".") for text in STOP_ADVICE.values())


def test_every_signal_stop_has_a_name_and_an_exit_code() -> None:
    assert set(SIGNAL_NAMES) == set(SIGNAL_STOPS)
    assert {SIGNAL_STOPS[r]: SIGNAL_NAMES[r] for r in SIGNAL_NAMES} == {
        130: "Ctrl-C",
        143: "SIGTERM",
        129: "SIGHUP",
    }


@pytest.mark.parametrize("member", [Status.NOT_FOUND, Change.RELATCH, RunKind.DRY_RUN])
def test_a_member_reads_as_its_value_everywhere(member: Status | Change | RunKind) -> None:
    assert str(member) == member.value
    assert f"{member}" == member.value and f"{member:>12}" == f"{member.value:>12}"
    assert json.dumps({"k": member}) == json.dumps({"k": member.value})
