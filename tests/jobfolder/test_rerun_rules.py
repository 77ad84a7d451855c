"""What earlier runs settled, what customers held before the job, and what undo must restore:
lookups over the lines of a job written to, and read back from, its real ledger (job.db)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from batch_latch.jobfolder.ledger import WRITING, Entry
from batch_latch.jobfolder.rerun_rules import (
    EARLIER_SUCCESS,
    Earlier,
    Origin,
    Target,
    Targets,
    Unanswered,
    is_refusal,
)
from batch_latch.outcome import Settled
from batch_latch.vocab import Change
from tests.ledgers import Record, records, write_job

URL = "http://127.0.0.1:9/v1"


def rec(
    fid: int,
    gid: str,
    status: str = "success",
    change: str = "new",
    previous: str = "",
    key: str = "",
    message: str = "latched",
    http: int | None = 200,
) -> Entry:
    return Record(fid, gid, status, http, message, key, "2026-01-01T00:00:00Z", change, previous)


def earlier(tmp_path: Path, lines: list[Entry]) -> Earlier:
    """The lines recorded by one command, read back from a reopened job.db."""
    write_job(tmp_path / "job", URL, lines)
    return Earlier(records(tmp_path / "job", URL))


def settled(
    e: Earlier,
    asked: list[tuple[int, str]],
    *,
    retry_not_found: bool = False,
    retry_failed: bool = False,
) -> Settled:
    fids = np.array([f for f, _ in asked], dtype=np.int64)
    gids = pa.array([g for _, g in asked], pa.string())
    return e.settled(fids, gids, retry_not_found=retry_not_found, retry_failed=retry_failed)


def settled_rows(s: Settled) -> dict[int, tuple[str, str]]:
    return {
        int(w): (st, key)
        for w, st, key in zip(s.where.tolist(), s.status.to_pylist(), s.error_key.to_pylist())
    }


def listed(targets: Targets) -> list[Target]:
    return sorted((targets[i] for i in range(len(targets))), key=lambda t: t.fusebill_id)


# --- settled ---------------------------------------------------------------------------------


def test_nothing_is_settled_in_a_new_job(tmp_path: Path) -> None:
    s = settled(earlier(tmp_path, []), [(1, "A")])
    assert s.where.tolist() == [] and s.notes == {}


def test_a_success_settles_its_pair_with_the_earlier_words(tmp_path: Path) -> None:
    e = earlier(tmp_path, [rec(1, "A", change="relatch", previous="OLD")])
    s = settled(e, [(2, "B"), (1, "A"), (1, "OTHER")])
    assert s.where.tolist() == [1]
    assert s.status.to_pylist() == ["success"]
    assert s.message.to_pylist() == [EARLIER_SUCCESS]
    assert s.error_key.to_pylist() == ["latched_earlier"]
    assert s.change.to_pylist() == ["relatch"]
    assert s.previous.to_pylist() == ["OLD"]
    assert s.http_status.to_pylist() == [200]
    assert s.finished_at.to_pylist() == ["2026-01-01T00:00:00Z"]


def test_the_latest_record_per_customer_wins(tmp_path: Path) -> None:
    # The job latched 1 to A, then (a fix) to B: only (1, B) is settled now.
    e = earlier(tmp_path, [rec(1, "A"), rec(2, "X"), rec(1, "B", change="relatch", previous="")])
    s = settled(e, [(1, "A"), (1, "B"), (2, "X")])
    assert sorted(s.where.tolist()) == [1, 2]


def test_a_success_settles_only_while_it_is_the_latest(tmp_path: Path) -> None:
    later_failure = rec(1, "A", "failed", "", key="http_503", message="busy", http=503)
    e = earlier(tmp_path, [rec(1, "A"), later_failure])
    s = settled(e, [(1, "A")])
    assert s.where.tolist() == []
    assert s.notes == {0: "failed: busy"}  # what a pending row will say of it


def test_a_later_success_of_the_same_pair_settles_again(tmp_path: Path) -> None:
    e = earlier(tmp_path, [rec(1, "A", "not_found", "", key="not_found", http=404), rec(1, "A")])
    assert settled_rows(settled(e, [(1, "A")])) == {0: ("success", "latched_earlier")}


@pytest.mark.parametrize("key", ["http_400", "http_403", "http_410", "http_422", "http_499"])
def test_a_refused_4xx_settles_unless_retry_failed(tmp_path: Path, key: str) -> None:
    e = earlier(tmp_path, [rec(1, "A", "failed", "", key=key, message="not eligible", http=400)])
    s = settled(e, [(1, "A")])
    assert settled_rows(s) == {0: ("failed", key)}
    assert "refused in an earlier run: not eligible" in s.message.to_pylist()[0]
    assert "--retry-failed" in s.message.to_pylist()[0]
    again = settled(e, [(1, "A")], retry_failed=True)
    assert again.where.tolist() == []
    assert again.notes == {0: "failed: not eligible"}


@pytest.mark.parametrize(
    "key",
    ["http_408", "http_409", "http_429", "http_500", "timeout", "unreadable", "relatch_refused"],
)
def test_other_failures_are_sent_again(tmp_path: Path, key: str) -> None:
    e = earlier(tmp_path, [rec(1, "A", "failed", "", key=key, message="why", http=None)])
    s = settled(e, [(1, "A")])
    assert s.where.tolist() == []
    assert s.notes == {0: "failed: why"}


def test_is_refusal() -> None:
    assert is_refusal("http_400") and is_refusal("http_422")
    assert not any(is_refusal(k) for k in ("http_408", "http_409", "http_429", "http_500", ""))


def test_not_found_settles_unless_retry_not_found(tmp_path: Path) -> None:
    e = earlier(
        tmp_path,
        [rec(1, "A", "not_found", "", key="not_found", message="Customer 1 not found.", http=404)],
    )
    s = settled(e, [(1, "A")])
    assert settled_rows(s) == {0: ("not_found", "not_found")}
    assert "--retry-not-found" in s.message.to_pylist()[0]
    assert "Customer 1 not found." in s.message.to_pylist()[0]
    assert settled(e, [(1, "A")], retry_not_found=True).where.tolist() == []
    # retry_failed does not send not_found rows again.
    assert settled(e, [(1, "A")], retry_failed=True).where.tolist() == [0]


def test_an_undone_latch_is_not_settled(tmp_path: Path) -> None:
    # Undo put "OLD" back: the pair (1, A) is a row like any other again, and the undo's own
    # record (1, OLD, success, undo) does not make (1, OLD) "latched earlier".
    e = earlier(
        tmp_path,
        [
            rec(1, "A", change="relatch", previous="OLD"),
            rec(1, "OLD", change="undo", previous="OLD", message="latched back"),
        ],
    )
    assert settled(e, [(1, "A"), (1, "OLD")]).where.tolist() == []


@pytest.mark.parametrize(
    ("status", "key"),
    [("failed", "changed_since"), ("failed", "unknown_previous"), ("failed", "http_400")],
)
def test_an_undo_that_restored_nothing_leaves_the_latch_settled(
    tmp_path: Path, status: str, key: str
) -> None:
    # The undo left customer 1 alone: (1, A) is still the latest latch this job made, so a
    # re-run does not send it again (and an undo's 400 is not a refusal of the pair).
    e = earlier(
        tmp_path,
        [
            rec(1, "A"),
            rec(2, "B"),
            rec(1, "A", status=status, change="undo", key=key, message="left alone"),
        ],
    )
    got = settled(e, [(1, "A"), (2, "B")])
    assert got.where.tolist() == [0, 1]
    assert got.status.to_pylist() == ["success", "success"]
    assert got.message.to_pylist() == [EARLIER_SUCCESS, EARLIER_SUCCESS]
    assert e.undo_targets().fusebill_ids.tolist() == [1, 2]


def test_only_undo_records_that_restored_nothing_settle_nothing(tmp_path: Path) -> None:
    e = earlier(tmp_path, [rec(1, "A", status="failed", change="undo", key="changed_since")])
    assert settled(e, [(1, "A")]).where.tolist() == []


def test_settled_keeps_asked_order_positions_for_many_rows(tmp_path: Path) -> None:
    lines = [rec(i, f"G{i}") for i in range(0, 200, 2)]
    e = earlier(tmp_path, lines)
    asked = [(i, f"G{i}") for i in range(200)]
    assert sorted(settled(e, asked).where.tolist()) == list(range(0, 200, 2))


# --- origins ---------------------------------------------------------------------------------


def test_origins_are_what_the_first_write_replaced(tmp_path: Path) -> None:
    e = earlier(
        tmp_path,
        [
            rec(1, "A", "failed", "", key="relatch_refused", previous="Z"),  # not a write
            rec(1, "A", change="relatch", previous="Z"),  # the first change
            rec(1, "B", change="relatch", previous="A"),  # a later one
            rec(2, "X", change="new"),
            rec(3, "Y", change="unknown"),  # written blind
            rec(4, "W", change="unchanged"),  # nothing written
        ],
    )
    assert e.origins([1, 2, 3, 4, 5]) == {
        1: Origin("Z", known=True),
        2: Origin("", known=True),
        3: Origin("", known=False),
    }
    assert e.origins([]) == {}


# --- undo targets ----------------------------------------------------------------------------


def test_undo_targets(tmp_path: Path) -> None:
    e = earlier(
        tmp_path,
        [
            rec(1, "A", change="new"),
            rec(1, "B", change="relatch", previous=""),  # latest write: B
            rec(1, "C", "failed", "", key="relatch_refused"),  # a failure is not a write
            rec(2, "X", change="relatch", previous="OLD"),
            rec(3, "Y", change="unknown"),
            rec(4, "W", change="unchanged"),
            rec(5, "V", change="new"),
            rec(5, "", change="undo", message="unlatched"),  # already undone
            rec(6, "N", "not_found", "", key="not_found", http=404),
        ],
    )
    assert listed(e.undo_targets()) == [
        Target(1, "B", Origin("", True)),
        Target(2, "X", Origin("OLD", True)),
        Target(3, "Y", Origin("", False)),
    ]


def test_a_customer_latched_again_after_its_undo_is_a_target_again(tmp_path: Path) -> None:
    e = earlier(
        tmp_path,
        [
            rec(1, "A", change="relatch", previous="OLD"),
            rec(1, "OLD", change="undo", previous="OLD"),
            rec(1, "A", change="relatch", previous="OLD"),
        ],
    )
    assert listed(e.undo_targets()) == [Target(1, "A", Origin("OLD", True))]


def test_no_undo_targets_in_a_new_job(tmp_path: Path) -> None:
    assert listed(earlier(tmp_path, []).undo_targets()) == []


def test_no_undo_targets_in_a_job_that_wrote_nothing(tmp_path: Path) -> None:
    e = earlier(
        tmp_path,
        [rec(1, "A", "not_found", "", key="not_found", http=404), rec(2, "B", change="unchanged")],
    )
    assert listed(e.undo_targets()) == []


# --- writes whose answer never came ------------------------------------------------------------


def sent(fid: int, gid: str, change: str = "new", previous: str = "") -> Entry:
    """A write's intent, recorded before it was sent (as the journal records it)."""
    return Entry(fid, gid, WRITING, change, previous, at="2026-01-01T00:00:00Z", row=2)


def test_a_write_whose_answer_never_came_stays_unanswered(tmp_path: Path) -> None:
    e = earlier(
        tmp_path,
        [
            sent(1, "A", "relatch", "OLD"),  # kill -9: nothing after it
            sent(2, "B"),
            rec(2, "B", "failed", "", key="timeout", message="lost"),  # settles: a read showed it
            sent(3, "C"),
            Record(3, "C", "pending", None, "stopped", "", "t"),  # the journal's settles=True
            sent(4, "D"),
            sent(4, "E", "relatch", "D"),  # a later open write to the same customer wins
            sent(5, "", "undo"),  # an undo's unlatch is not a latch of the job
        ],
    )
    assert e.unanswered([1, 2, 3, 4, 5, 6]) == {
        1: Unanswered("A", Change.RELATCH, "OLD"),
        4: Unanswered("E", Change.RELATCH, "D"),
    }
    assert e.unanswered([2, 3]) == {}


def test_a_line_that_did_not_settle_the_customer_leaves_its_write_open(tmp_path: Path) -> None:
    unsettled = Entry(1, "A", "failed", "", "", "timeout", None, "lost", "t", 2, settles=False)
    e = earlier(tmp_path, [sent(1, "A"), unsettled])
    assert e.unanswered([1]) == {1: Unanswered("A", Change.NEW, "")}
    # It may have landed: undo reads that customer and puts back what it held.
    assert listed(e.undo_targets()) == [Target(1, "A", Origin("", True))]
    # And it is not settled for a re-run: it is sent (or found landed) again.
    assert settled(e, [(1, "A")]).where.tolist() == []


def test_a_job_killed_before_any_answer_came_knows_its_open_writes(tmp_path: Path) -> None:
    e = earlier(tmp_path, [sent(1, "A", "relatch", "OLD"), sent(2, "B")])
    assert e.unanswered([1, 2]) == {
        1: Unanswered("A", Change.RELATCH, "OLD"),
        2: Unanswered("B", Change.NEW, ""),
    }
    assert listed(e.undo_targets()) == [
        Target(1, "A", Origin("OLD", True)),
        Target(2, "B", Origin("", True)),
    ]
