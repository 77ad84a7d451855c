"""``runner.latch`` end to end in memory: which rows are sent, what an earlier run settled,
plan, --no-read, stops and pending rows, and a checkpoint failure surfacing in the main
thread. Fusebill is the in-memory fake; the sheet is a real CSV through loader and validate."""

from __future__ import annotations

import csv
import io
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pydantic import SecretStr

from batch_latch.jobfolder.ledger import Ledger
from batch_latch.jobfolder.ledger import LedgerWriteError as JournalWriteError
from batch_latch.outcome import LiveOutcome, TextColumn
from batch_latch.reports import writer as report
from batch_latch.send.pool import Pool
from batch_latch.send.progress import Silent
from batch_latch.send.throttle import Throttle
from batch_latch.settings import Settings
from batch_latch.sheet import loader, validate
from batch_latch.vocab import RunKind, Status, StopReason
from tests import ledgers
from tests.doubles import Call, FakeFusebill, error, wait_for

BASE = "https://fusebill.test/v1"
KEY = "sk_live_RUNNER_SECRET"


def sheet(tmp_path: Path, pairs: list[tuple[str, str]], name: str = "in.csv") -> Path:
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fusebillId", "geotabId"])
        writer.writerows(pairs)
    return path


def settings(tmp_path: Path, source: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "out": tmp_path / "out",
        "input": source,
        "rate": 10_000.0,
        "workers": 2,
        "max_attempts": 1,  # no backoff sleeps in these tests
        "read_batch": 1,  # one-by-one reads here; the customer list: tests/send/test_reads.py
        "base_url": BASE,
        "api_key": SecretStr(KEY),
        "progress": False,
        **overrides,
    }
    return Settings(**options)


def latch(
    tmp_path: Path,
    pairs: list[tuple[str, str]],
    fake: FakeFusebill,
    err: io.StringIO | None = None,
    **overrides: Any,
) -> tuple[LiveOutcome, list[dict[str, Any]], str]:
    source = sheet(tmp_path, pairs)
    chosen = settings(tmp_path, source, **overrides)
    verdicts = validate.validate(loader.load(source))
    err = err or io.StringIO()
    outcome = ledgers.latch(chosen, verdicts, service=fake, progress=Silent(err), stderr=err)
    table = {name: values.to_pylist() for name, values in outcome.columns.items()}
    rows = [{name: table[name][i] for name in table} for i in range(len(table["row"]))]
    return outcome, rows, err.getvalue()


class Stored:
    """The job's lines as the engine reads them back."""

    def __init__(self, records: Any) -> None:
        self.records = records


def statuses(rows: list[dict[str, Any]]) -> list[str]:
    return [r["status"] for r in rows]


# --- a first run -----------------------------------------------------------------------------


def test_a_run_reads_then_latches_and_reports_each_change(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None, 2: "B", 3: "OLD"})
    outcome, rows, err = latch(tmp_path, [("1", "A"), ("2", "B"), ("3", "C"), ("4", "D")], fake)
    assert statuses(rows) == ["success", "success", "failed", "not_found"]
    assert [r["change"] for r in rows] == [
        "new",
        "unchanged",
        "",
        "",
    ]  # v3: a refused relatch did nothing
    assert [r["error_key"] for r in rows] == ["", "", "relatch_refused", "not_found"]
    assert [r["previous_geotabId"] for r in rows] == ["", "", "OLD", ""]
    assert [r["attempts"] for r in rows] == [1, 0, 0, 0]
    assert [r["row"] for r in rows] == [2, 3, 4, 5]
    assert (fake.held(1), fake.held(2), fake.held(3)) == ("A", "B", "OLD")
    assert (outcome.reads, outcome.writes, outcome.requests) == (4, 1, 5)
    assert outcome.stop_reason is None and outcome.stop_message == ""
    assert "up to 8 requests (a read, then a write)" in err
    assert KEY not in err
    assert fake.closed


def test_allow_relatch_replaces_and_records_what_it_replaced(tmp_path: Path) -> None:
    fake = FakeFusebill({3: "OLD"})
    _, rows, _ = latch(tmp_path, [("3", "C")], fake, allow_relatch=True)
    assert (rows[0]["status"], rows[0]["change"], rows[0]["previous_geotabId"]) == (
        "success",
        "relatch",
        "OLD",
    )
    store = Stored(ledgers.records(tmp_path / "out", BASE))
    # The write-ahead record, then the outcome: both name what it replaced.
    assert store.records.status.to_pylist() == ["writing", "success"]
    assert store.records.previous.to_pylist() == ["OLD", "OLD"]
    assert store.records.change.to_pylist() == ["relatch", "relatch"]


def test_no_read_latches_blind_with_change_unknown(tmp_path: Path) -> None:
    fake = FakeFusebill({1: "OLD", 2: None})
    outcome, rows, err = latch(tmp_path, [("1", "A"), ("2", "B")], fake, no_read=True)
    assert statuses(rows) == ["success", "success"]
    assert {r["change"] for r in rows} == {"unknown"}
    assert fake.count("customer") == 0
    assert (outcome.reads, outcome.writes) == (0, 2)
    assert "2 requests at up to" in err


def test_invalid_and_duplicate_rows_are_not_sent(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None})
    _, rows, _ = latch(tmp_path, [("1", "A"), ("x", "B"), ("1", "A")], fake)
    assert statuses(rows) == ["success", "invalid", "duplicate"]
    assert fake.methods() == ["customer", "latch"]


# --- plan ------------------------------------------------------------------------------------


def test_a_plan_reads_writes_nothing_and_records_nothing(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None, 2: "B", 3: "OLD"})
    outcome, rows, err = latch(
        tmp_path, [("1", "A"), ("2", "B"), ("3", "C"), ("4", "D")], fake, kind=RunKind.PLAN
    )
    assert statuses(rows) == ["valid", "valid", "valid", "not_found"]
    assert [r["change"] for r in rows] == ["new", "unchanged", "relatch", ""]
    assert set(fake.methods()) == {"customer"}
    assert outcome.writes == 0 and outcome.reads == 4
    assert "Planning 4 rows" in err
    store = Stored(ledgers.records(tmp_path / "out", BASE))
    assert store.records.table.num_rows == 0


def test_a_plan_shows_rows_latched_earlier_as_valid_unchanged(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None})
    latch(tmp_path, [("1", "A")], fake)
    fake.calls.clear()
    _, rows, _ = latch(tmp_path, [("1", "A")], fake, kind=RunKind.PLAN)
    assert (rows[0]["status"], rows[0]["change"]) == ("valid", "unchanged")
    assert "a run would not send it" in rows[0]["message"]
    assert fake.calls == []


# --- re-runs ---------------------------------------------------------------------------------


def test_a_rerun_sends_nothing_settled(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None, 2: None})
    latch(tmp_path, [("1", "A"), ("2", "B"), ("9", "Z")], fake)
    fake.calls.clear()
    outcome, rows, err = latch(tmp_path, [("1", "A"), ("2", "B"), ("9", "Z")], fake)
    assert statuses(rows) == ["success", "success", "not_found"]
    assert rows[0]["message"] == "latched earlier; not sent again"
    assert rows[0]["change"] == "new"  # what the earlier run did
    assert "--retry-not-found" in rows[2]["message"]
    assert fake.calls == [] and outcome.requests == 0
    assert "Nothing to send (3 rows settled by earlier runs are not sent again)" in err


def test_retry_not_found_and_retry_failed_send_those_rows_again(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None}).script("latch", 1, error(400, "not eligible"))
    latch(tmp_path, [("1", "A"), ("9", "Z")], fake)
    fake.calls.clear()
    _, rows, _ = latch(tmp_path, [("1", "A"), ("9", "Z")], fake)
    assert statuses(rows) == ["failed", "not_found"]
    assert "refused in an earlier run: not eligible" in rows[0]["message"]
    assert fake.calls == []
    _, rows, _ = latch(
        tmp_path, [("1", "A"), ("9", "Z")], fake, retry_failed=True, retry_not_found=True
    )
    assert statuses(rows) == ["success", "not_found"]
    assert sorted({c.fusebill_id for c in fake.calls}) == [1, 9]


def test_a_pair_is_settled_only_while_it_is_the_latest_latch(tmp_path: Path) -> None:
    # The main sheet latched 1 to A; a mistyped fix then latched 1 to B.
    fake = FakeFusebill({1: None})
    latch(tmp_path, [("1", "A")], fake)
    latch(tmp_path, [("1", "B")], fake, allow_relatch=True)
    assert fake.held(1) == "B"
    fake.calls.clear()
    _, rows, _ = latch(tmp_path, [("1", "A")], fake)
    # Not "latched earlier": the row is read again, and the relatch is refused.
    assert (rows[0]["status"], rows[0]["error_key"]) == ("failed", "relatch_refused")
    assert "'B'" in rows[0]["message"]
    assert fake.methods() == ["customer"]


def test_a_refused_row_reports_what_the_customer_held_before_the_job(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None})
    latch(tmp_path, [("1", "A")], fake)
    latch(tmp_path, [("1", "B")], fake, allow_relatch=True)
    _, rows, _ = latch(tmp_path, [("1", "A")], fake)
    assert rows[0]["error_key"] == "relatch_refused"
    assert rows[0]["previous_geotabId"] == ""


def test_a_rerun_relatch_keeps_the_first_previous(tmp_path: Path) -> None:
    fake = FakeFusebill({1: "ORIGINAL"})
    latch(tmp_path, [("1", "A")], fake, allow_relatch=True)
    _, rows, _ = latch(tmp_path, [("1", "B")], fake, allow_relatch=True)
    assert (rows[0]["status"], rows[0]["previous_geotabId"]) == ("success", "ORIGINAL")


# --- stops -----------------------------------------------------------------------------------


def test_a_rejected_key_stops_and_leaves_rows_pending(tmp_path: Path) -> None:
    fake = FakeFusebill({i: None for i in range(1, 6)}).always(
        "customer", lambda f: error(401, "Invalid API key")
    )
    outcome, rows, err = latch(tmp_path, [(str(i), f"G{i}") for i in range(1, 6)], fake)
    assert set(statuses(rows)) == {"pending"}
    assert {r["error_key"] for r in rows} == {"key_rejected"}
    assert outcome.stop_reason is StopReason.KEY_REJECTED
    assert "rejected the API key" in outcome.stop_message and "5 rows are pending" in err
    assert fake.count("latch") == 0
    assert len(fake.calls) <= 2  # at most the requests in flight when it stopped


def test_twenty_retryable_failures_stop_and_the_failed_rows_are_pending(tmp_path: Path) -> None:
    fake = FakeFusebill({i: None for i in range(1, 31)}).always(
        "customer", lambda f: error(503, "Service Unavailable")
    )
    outcome, rows, _ = latch(tmp_path, [(str(i), f"G{i}") for i in range(1, 31)], fake)
    assert outcome.stop_reason is StopReason.API_DOWN
    assert set(statuses(rows)) == {"pending"}
    assert 20 <= len(fake.calls) <= 21
    assert sum(r["error_key"] == "api_down" for r in rows) >= 19  # the streak's own rows
    assert any("last answer" in r["message"] for r in rows)


def test_rows_an_outage_made_pending_are_pending_in_the_ledger_too(tmp_path: Path) -> None:
    fake = FakeFusebill({i: None for i in range(1, 31)}).always(
        "customer", lambda f: error(503, "Service Unavailable")
    )
    _, rows, _ = latch(tmp_path, [(str(i), f"G{i}") for i in range(1, 31)], fake)
    streak = {int(r["fusebillId"]) for r in rows if r["error_key"] == "api_down"}
    assert len(streak) >= 19
    with sqlite3.connect(tmp_path / "out" / "job.db") as db:
        pairs = dict(db.execute("SELECT fusebillId, status FROM pairs").fetchall())
        first = min(set(pairs) & streak)
        events = db.execute("SELECT status FROM events WHERE fusebillId = ?", (first,))
        said = [status for (status,) in events]
    answered = {fid: status for fid, status in pairs.items() if fid in streak}
    assert len(answered) >= 18  # the streak's rows whose 503 was kept (not the one in flight)
    assert set(answered.values()) == {"pending"}  # status counts what the report says
    assert "failed" not in pairs.values()
    assert said == ["failed", "pending"]  # the answer kept, then the stop's word on it


def test_max_requests_counts_reads_and_stops(tmp_path: Path) -> None:
    fake = FakeFusebill({i: None for i in range(1, 5)})
    outcome, rows, _ = latch(
        tmp_path, [(str(i), f"G{i}") for i in range(1, 5)], fake, max_requests=3, workers=1
    )
    assert outcome.requests == 3 == len(fake.calls)
    assert outcome.stop_reason is StopReason.MAX_REQUESTS
    assert statuses(rows)[0] == "success"
    assert "pending" in statuses(rows)


def test_a_row_not_reached_keeps_the_earlier_message(tmp_path: Path) -> None:
    fake = FakeFusebill({2: None, 3: None}).script("latch", 2, error(503, "busy"))
    _, rows, _ = latch(tmp_path, [("2", "B")], fake)
    assert rows[0]["status"] == "failed"
    # The next run (another sheet order) stops before it reaches row (2, B).
    outcome, rows, _ = latch(tmp_path, [("3", "C"), ("2", "B")], fake, max_requests=1, workers=1)
    assert outcome.stop_reason is StopReason.MAX_REQUESTS
    assert rows[1]["status"] == "pending"
    assert rows[1]["message"].startswith("not sent: --max-requests was reached")
    assert "; an earlier run said: failed:" in rows[1]["message"]
    assert "busy" in rows[1]["message"]


def test_ctrl_c_lets_the_request_in_flight_finish_and_leaves_the_rest_pending(
    tmp_path: Path,
) -> None:
    err = io.StringIO()

    def ctrl_c_during_the_first_latch(call: Call) -> None:
        if call.method == "latch" and call.fusebill_id == 1:
            signal.raise_signal(signal.SIGINT)
            wait_for(lambda: "Stopping" in err.getvalue(), what="the Ctrl-C handler")

    fake = FakeFusebill({i: None for i in range(1, 6)}, on_call=ctrl_c_during_the_first_latch)
    outcome, rows, _ = latch(
        tmp_path, [(str(i), f"G{i}") for i in range(1, 6)], fake, workers=1, err=err
    )
    assert outcome.stop_reason is StopReason.INTERRUPTED
    assert statuses(rows)[0] == "success"  # the request in flight finished and was recorded
    assert statuses(rows)[1:] == ["pending"] * 4
    assert "interrupted" in rows[1]["message"]
    assert "Interrupted: 4 rows are pending" in outcome.stop_message
    assert signal.getsignal(signal.SIGINT) is not None  # the handler was put back


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's commits fail as SQLite's do on a full disk."""
    real_append = Ledger._append

    def failing(self: Ledger, entries: Any, *, command: int) -> list[int]:
        self._failure = sqlite3.OperationalError("database or disk is full")
        return real_append(self, entries, command=command)

    monkeypatch.setattr(Ledger, "_append", failing)


@pytest.mark.usefixtures("full_disk")
def test_a_checkpoint_failure_in_a_worker_is_raised_in_the_main_thread(tmp_path: Path) -> None:
    hooked: list[object] = []
    previous = threading.excepthook
    threading.excepthook = hooked.append  # a worker dying with a traceback would land here
    try:
        fake = FakeFusebill({i: None for i in range(1, 7)})
        with pytest.raises(JournalWriteError) as caught:
            latch(tmp_path, [(str(i), f"G{i}") for i in range(1, 7)], fake)
    finally:
        threading.excepthook = previous
    assert hooked == []
    assert caught.value.exit_code == 3
    assert "No space left on device" in str(caught.value)
    assert fake.count("latch") <= 2  # the workers stopped at the first failure


@pytest.mark.usefixtures("full_disk")
def test_a_ledger_failure_before_any_request_is_exit_2_and_after_one_exit_3(
    tmp_path: Path,
) -> None:
    # Contract: a full disk stops the command "exit 3 once requests went out, else 2".
    codes: dict[bool, tuple[int, int]] = {}
    for no_read in (True, False):  # blind: the first write's intent precedes any request
        fake = FakeFusebill({1: None, 2: None})
        (tmp_path / str(no_read)).mkdir()
        with pytest.raises(JournalWriteError) as caught:
            latch(tmp_path / str(no_read), [("1", "A"), ("2", "B")], fake, no_read=no_read)
        codes[no_read] = (caught.value.exit_code, len(fake.calls))
    assert codes[True] == (2, 0)
    assert codes[False][0] == 3 and codes[False][1] >= 1


def test_a_bug_on_one_row_fails_that_row_and_the_run_goes_on(tmp_path: Path) -> None:
    def explode(call: Call) -> None:
        if call.fusebill_id == 2:
            raise ValueError(f"unexpected shape, key {KEY}")

    fake = FakeFusebill({1: None, 2: None, 3: None}, key=KEY, on_call=explode)
    outcome, rows, _ = latch(tmp_path, [("1", "A"), ("2", "B"), ("3", "C")], fake)
    assert statuses(rows) == ["success", "failed", "success"]
    # An exception while an answer is read is an answer of unknown outcome, never a write.
    assert rows[1]["error_key"] == "unreadable"
    assert "ValueError: unexpected shape" in rows[1]["message"]
    assert KEY not in rows[1]["message"]
    assert outcome.stop_reason is None


def test_a_bug_in_the_row_logic_fails_the_row_and_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch_latch.send import decisions

    real = decisions.RowLogic.process

    def buggy(self: decisions.RowLogic, task: decisions.Task) -> Any:
        if task.fusebill_id in (2, 3, 4, 5, 6, 7, 8):
            raise KeyError(f"bug near {KEY}")
        return real(self, task)

    monkeypatch.setattr(decisions.RowLogic, "process", buggy)
    fake = FakeFusebill({i: None for i in range(1, 10)}, key=KEY)
    outcome, rows, _ = latch(tmp_path, [(str(i), f"G{i}") for i in range(1, 10)], fake)
    assert [r["error_key"] for r in rows].count("internal_error") == 7
    assert rows[0]["status"] == "success" and rows[8]["status"] == "success"
    assert len(outcome.row_errors) == 5  # the first five are kept, the rest only counted
    assert all("Traceback (most recent call last)" in t for t in outcome.row_errors)
    assert all("in buggy" in t and "KeyError" in t for t in outcome.row_errors)
    assert not any(KEY in t for t in outcome.row_errors)


def test_pool_stops_the_feed_when_done_raises() -> None:
    throttle = Throttle(10_000.0)
    seen: list[int] = []

    def done(task: int, outcome: int) -> None:
        if task == 2:
            raise JournalWriteError("disk full")

    def work(task: int) -> int:
        seen.append(task)
        return task

    with pytest.raises(JournalWriteError):
        Pool[int, int](throttle, 1).run(list(range(10)), work, done)
    assert seen == [0, 1, 2]
    assert throttle.stop_reason is StopReason.LEDGER_ERROR


# --- columns ---------------------------------------------------------------------------------


def test_text_column_overlays_values_and_counts_add_up() -> None:
    column = TextColumn(pa.array(["valid", "invalid", "valid", "valid"]), 4)
    column.put(np.array([0]), "success")
    column.put(np.array([2, 3]), pa.array(["success", "not_found"]))
    values = column.array()

    assert values.to_pylist() == ["success", "invalid", "success", "not_found"]
    # "success" sits under two codes of the dictionary: counts still add up.
    assert report.count_statuses(values)[Status.SUCCESS] == 2


def test_one_request_is_said_in_the_singular(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None}, key=KEY)
    _, _, err = latch(tmp_path, [("1", "A")], fake, no_read=True)
    assert "Sending 1 row to " in err and ": 1 request at up to " in err
    assert "1 requests" not in err


def test_a_read_and_a_write_are_counted_as_two_requests(tmp_path: Path) -> None:
    fake = FakeFusebill({1: None}, key=KEY)
    _, _, err = latch(tmp_path, [("1", "A")], fake)
    assert ": up to 2 requests (a read, then a write)" in err
