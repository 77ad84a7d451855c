"""``undo``: put back what the job's latches replaced, with the guard against customers
changed since; resumable, never unlatching twice (against the in-memory Fusebill)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from pydantic import SecretStr

from batch_latch.commands import job as command_run
from batch_latch.commands import undo
from batch_latch.errors import BatchLatchError, NotAJob
from batch_latch.fusebill.answers import Reply
from batch_latch.fusebill.service import FusebillService
from batch_latch.jobfolder.ledger import Entry, Ledger
from batch_latch.outcome import LiveOutcome, ResultColumns
from batch_latch.send.progress import Silent
from batch_latch.settings import Settings
from batch_latch.vocab import Change, RunKind, Status
from tests.doubles import FakeFusebill, Landed, error, timeout
from tests.ledgers import Record, command, records, write_job

URL = "http://127.0.0.1:9/v1"


def rec(
    fid: int, gid: str, change: str = "new", previous: str = "", status: str = "success"
) -> Entry:
    return Record(fid, gid, status, 200, "latched", "", "2026-01-01T00:00:00Z", change, previous)


def job(out: Path, lines: list[Entry]) -> Path:
    """A job whose one run recorded ``lines`` in its ledger."""
    return write_job(out, URL, lines)


def journal(out: Path) -> list[tuple[int, str, str, str, str]]:
    """The job's lines as the re-run rules and undo read them: (fusebillId, geotabId,
    status, change, error_key), in order."""
    t = records(out, URL).table
    return list(
        zip(
            t["f"].to_pylist(),
            t["g"].to_pylist(),
            t["s"].to_pylist(),
            t["c"].to_pylist(),
            t["k"].to_pylist(),
        )
    )


def log(out: Path) -> list[tuple[object, ...]]:
    """Every line of the job's ledger, as stored."""
    ledger = Ledger.open(out, create=False)
    try:
        return ledger.query("SELECT * FROM log ORDER BY seq")
    finally:
        ledger.close()


def settings(out: Path, *, dry_run: bool = False, unlatch_unknown: bool = False) -> Settings:
    return Settings(
        out=out,
        kind=RunKind.UNDO,
        dry_run=dry_run,
        rate=10_000.0,
        workers=2,
        read_batch=1,  # one-by-one reads here; undo through the list: test_undo_reads_a_list
        unlatch_unknown=unlatch_unknown,
        base_url=URL,
        api_key=SecretStr("sk_test_FAKE_KEY"),
        progress=False,
    )


def undoing(
    chosen: Settings,
    service: FusebillService | None = None,
    err: io.StringIO | None = None,
) -> LiveOutcome:
    """``undo.undo`` as the command runs it: its own line in the job's ledger."""
    kind = "undo_dry_run" if chosen.dry_run else "undo"
    with command(chosen.out, URL, kind) as ledger:
        return undo.undo(
            chosen, ledger, service=service, progress=Silent(err or io.StringIO()), stderr=err
        )


def live(
    out: Path, fake: FakeFusebill, *, unlatch_unknown: bool = False
) -> tuple[LiveOutcome, str]:
    err = io.StringIO()
    result = undoing(settings(out, unlatch_unknown=unlatch_unknown), fake, err)
    assert isinstance(result, LiveOutcome)
    return result, err.getvalue()


def rows(columns: ResultColumns) -> dict[str, dict[str, object]]:
    """fusebillId -> the report row."""
    table = {name: values.to_pylist() for name, values in columns.items()}
    return {
        str(fid): {name: table[name][i] for name in table}
        for i, fid in enumerate(table["fusebillId"])
    }


def test_restores_by_unlatch_and_by_latching_back(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(1, "A", "new"), rec(2, "X", "relatch", "OLD")])
    fake = FakeFusebill({1: "A", 2: "X"})
    result, _ = live(out, fake)
    got = rows(result.columns)
    assert (got["1"]["status"], got["1"]["change"], got["1"]["geotabId"]) == (
        "success",
        "undo",
        "A",
    )
    assert (got["2"]["status"], got["2"]["change"], got["2"]["previous_geotabId"]) == (
        "success",
        "undo",
        "OLD",
    )
    assert fake.held(1) is None and fake.held(2) == "OLD"
    assert fake.methods(1) == ["customer", "unlatch"]
    assert fake.methods(2) == ["customer", "latch"]
    assert [c.geotab_id for c in fake.calls if c.method == "latch"] == ["OLD"]
    assert got["1"]["attempts"] == 1 and got["2"]["attempts"] == 1
    assert (result.reads, result.writes, result.requests) == (2, 2, 4)
    # Its outcomes are in the ledger: the job now holds nothing to undo.
    assert (1, "", "success", "undo", "") in journal(out)
    assert (2, "OLD", "success", "undo", "") in journal(out)


def test_a_customer_changed_since_is_left_alone(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(3, "Y", "new")])
    fake = FakeFusebill({3: "SOMEONE-ELSE"})
    result, _ = live(out, fake)
    got = rows(result.columns)["3"]
    assert (got["status"], got["error_key"]) == ("failed", "changed_since")
    assert "'SOMEONE-ELSE'" in str(got["message"])
    assert fake.methods() == ["customer"]
    assert fake.held(3) == "SOMEONE-ELSE"


def test_a_blind_latch_is_left_alone_unless_unlatch_unknown(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(4, "W", "unknown")])
    fake = FakeFusebill({4: "W"})
    result, _ = live(out, fake)
    got = rows(result.columns)["4"]
    assert (got["status"], got["error_key"]) == ("failed", "unknown_previous")
    assert "--unlatch-unknown" in str(got["message"])
    assert fake.calls == []  # not even a read

    result, _ = live(out, fake, unlatch_unknown=True)
    got = rows(result.columns)["4"]
    assert (got["status"], got["change"]) == ("success", "undo")
    assert fake.methods() == ["customer", "unlatch"]
    assert fake.held(4) is None


def test_an_undo_interrupted_after_its_write_never_writes_twice(tmp_path: Path) -> None:
    # The first undo's unlatch landed, then the process died before recording it.
    out = job(tmp_path, [rec(1, "A", "new"), rec(2, "X", "relatch", "OLD")])
    fake = FakeFusebill({1: None, 2: "OLD"})
    result, _ = live(out, fake)
    got = rows(result.columns)
    for fid in ("1", "2"):
        assert (got[fid]["status"], got[fid]["change"]) == ("success", "undo")
        assert "already holds what it held before" in str(got[fid]["message"])
    assert set(fake.methods()) == {"customer"}
    # And the next undo finds nothing left: no request at all.
    fake.calls.clear()
    again, err = live(out, fake)
    assert len(again.columns.row) == 0
    assert "Nothing to undo" in err
    assert fake.calls == []


def test_an_unlatch_whose_answer_was_lost_is_confirmed_by_a_read(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(1, "A", "new")])
    fake = FakeFusebill({1: "A"}).script("unlatch", 1, Landed(timeout()), error(400, "no latch"))
    result, _ = live(out, fake)
    got = rows(result.columns)["1"]
    assert got["status"] == "success", got
    assert "confirmed by read-back" in str(got["message"])
    assert fake.count("unlatch") == 2
    assert fake.held(1) is None


@pytest.mark.parametrize("status", [103, 304])
def test_a_1xx_or_304_to_an_unlatch_is_confirmed_by_a_read(tmp_path: Path, status: int) -> None:
    out = job(tmp_path, [rec(1, "A", "new")])
    fake = FakeFusebill({1: "A"}).script("unlatch", 1, Landed(Reply(status, "")))
    result, err = live(out, fake)
    got = rows(result.columns)["1"]
    assert got["status"] == "success", got
    assert "confirmed by read-back" in str(got["message"])
    assert fake.methods(1)[-2:] == ["unlatch", "customer"] and fake.held(1) is None
    assert "redirect" not in err


def test_an_unlatch_that_proves_nothing_and_did_not_land_fails(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(1, "A", "new")])
    fake = FakeFusebill({1: "A"}).script("unlatch", 1, error(200, "odd"))
    result, _ = live(out, fake)
    got = rows(result.columns)["1"]
    assert (got["status"], got["error_key"]) == ("failed", "unconfirmed")
    assert fake.held(1) == "A"


def test_an_undo_stopped_during_the_read_back_leaves_the_customer_pending(
    tmp_path: Path,
) -> None:
    """The unlatch's answer was lost and the run stopped (--max-requests) before its read-back
    could answer: the outcome is unknown, so nothing is recorded and the next undo does it."""
    out = job(tmp_path, [rec(1, "A", "new")])
    fake = FakeFusebill({1: "A"}).script("unlatch", 1, Landed(timeout()))
    chosen = dataclasses.replace(settings(out), max_requests=2, max_attempts=1)
    result = undoing(chosen, fake)
    got = rows(result.columns)["1"]
    assert got["status"] == "pending", got
    assert fake.methods(1) == ["customer", "unlatch"]  # the read-back was never sent
    # Only the write-ahead record of the unlatch: no outcome, so the next undo does it.
    assert [r[2:4] for r in journal(out)] == [("success", "new"), ("writing", "undo")]
    again, _ = live(out, FakeFusebill({1: None}))
    assert rows(again.columns)["1"]["status"] == "success"  # already restored: nothing written


def test_undo_of_a_job_that_latched_nothing(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(5, "N", "", status="not_found"), rec(6, "U", "unchanged")])
    fake = FakeFusebill({6: "U"})
    result, err = live(out, fake)
    assert len(result.columns.row) == 0
    assert result.requests == 0 and result.stop_reason is None
    assert "Nothing to undo" in err
    assert fake.calls == []


def test_undo_of_a_folder_that_is_not_a_job(tmp_path: Path) -> None:
    nothing = tmp_path / "nothing-here"
    with pytest.raises(NotAJob) as caught:
        command_run.run(settings(nothing), stdout=io.StringIO(), stderr=io.StringIO())
    assert caught.value.exit_code == 2
    assert "not a batch-latch job folder" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not nothing.exists()  # refused before anything was made


@pytest.mark.parametrize("dry_run", [True, False])
def test_undo_of_a_job_damaged_in_its_logs_pages_is_refused_before_it_begins(
    tmp_path: Path, dry_run: bool
) -> None:
    """Undo reads its targets while the ledger's full check runs beside it; the check's
    verdict comes first: one line naming the file, exit 2, no run folder, the file as it was,
    nothing sent (port 9 on loopback: a request would fail differently)."""
    out = job(tmp_path, [rec(1_000 + i, f"G{i}") for i in range(3_000)])
    path = out / "job.db"
    data = path.read_bytes()
    middle = len(data) // 2
    path.write_bytes(data[:middle] + b"\xab" * 8192 + data[middle + 8192 :])
    (out / ".lock").touch()  # as every command leaves it (the lock's file)
    before = sorted(p.name for p in out.iterdir()), path.read_bytes()
    err = io.StringIO()
    with pytest.raises(BatchLatchError) as caught:
        command_run.run(settings(out, dry_run=dry_run), stdout=io.StringIO(), stderr=err)
    text = str(caught.value)
    assert caught.value.exit_code == 2
    assert str(path) in text and "is damaged" in text and "\n" not in text, text
    assert "restore it from a backup" in text
    assert err.getvalue() == ""
    assert (sorted(p.name for p in out.iterdir()), path.read_bytes()) == before


def test_undo_of_a_job_of_dry_runs_and_plans_has_nothing_to_undo(tmp_path: Path) -> None:
    """A job folder whose commands latched nothing (a dry run, a plan) is a job: undo says
    there is nothing to undo and exits 0, sending nothing."""
    out = tmp_path / "job"
    sheet = tmp_path / "in.csv"
    sheet.write_text("fusebillId,geotabId\n1,A\n", encoding="utf-8")
    dry = Settings(out=out, input=sheet, kind=RunKind.DRY_RUN, dry_run=True, progress=False)
    assert command_run.run(dry, stdout=io.StringIO(), stderr=io.StringIO()).exit_code == 0
    write_job(out, URL, [rec(1, "A", "new", status="valid")], kind="plan")
    err = io.StringIO()
    # Port 9 (discard) on loopback: a request sent would fail the command, not pass it.
    done = command_run.run(settings(out), stdout=io.StringIO(), stderr=err)
    assert done.exit_code == 0, err.getvalue()
    assert "Nothing to undo" in err.getvalue()
    assert "not a batch-latch job folder" not in err.getvalue()
    assert (done.summary.rows, done.summary.requests) == (0, 0)
    err = io.StringIO()
    dry = settings(out, dry_run=True)
    assert command_run.run(dry, stdout=io.StringIO(), stderr=err).exit_code == 0
    assert "Nothing to undo" in err.getvalue()


def test_undo_of_an_empty_job(tmp_path: Path) -> None:
    out = job(tmp_path, [])
    result, err = live(out, FakeFusebill())
    assert len(result.columns.row) == 0 and result.requests == 0
    assert "Nothing to undo" in err


def test_dry_run_lists_what_it_would_do_and_sends_nothing(tmp_path: Path) -> None:
    out = job(
        tmp_path,
        [rec(1, "A", "new"), rec(2, "X", "relatch", "OLD"), rec(3, "W", "unknown")],
    )
    before = log(out)
    result = undoing(settings(out, dry_run=True))  # no service: it must not need one
    assert (result.requests, result.reads, result.writes) == (0, 0, 0)
    got = rows(result.columns)
    assert {fid: r["status"] for fid, r in got.items()} == {
        "1": "valid",
        "2": "valid",
        "3": "valid",
    }
    assert {r["change"] for r in got.values()} == {"undo"}
    assert "would unlatch if it still holds 'A'" in str(got["1"]["message"])
    assert "would latch back to 'OLD' if it still holds 'X'" in str(got["2"]["message"])
    assert "would leave alone" in str(got["3"]["message"])
    assert log(out) == before  # the ledger has the command, but not a line more

    with_unknown = undoing(settings(out, dry_run=True, unlatch_unknown=True))
    assert with_unknown.requests == 0
    assert "would unlatch" in str(rows(with_unknown.columns)["3"]["message"])


def test_a_key_rejected_mid_undo_leaves_the_rest_pending(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(1, "A", "new"), rec(2, "B", "new")])
    fake = FakeFusebill({1: "A", 2: "B"}).always("customer", lambda f: error(401, "bad key"))
    result, err = live(out, fake)
    assert {r["status"] for r in rows(result.columns).values()} == {"pending"}
    assert result.stop_reason is not None and result.stop_reason.value == "key_rejected"
    assert "rejected the API key" in err
    assert fake.held(1) == "A" and fake.held(2) == "B"
    # Nothing was recorded for them: the next undo does them.
    assert [r[3] for r in journal(out)] == ["new", "new"]


@pytest.mark.parametrize("previous", ["", "OLD"])
def test_an_undo_stopped_after_its_read_reports_the_reads_status(
    tmp_path: Path, previous: str
) -> None:
    out = job(tmp_path, [rec(1, "A", "relatch" if previous else "new", previous)])
    chosen = dataclasses.replace(settings(out), max_requests=1)
    result = undoing(chosen, FakeFusebill({1: "A"}))
    got = rows(result.columns)["1"]
    assert (got["status"], got["http_status"], got["attempts"]) == ("pending", 200, 0)


def test_a_dry_run_needs_no_base_url_either(tmp_path: Path) -> None:
    """``undo --dry-run`` needs no key; without FUSEBILL_BASE_URL it lists the job's own API's
    latches instead of stopping on "made against another URL"."""
    out = job(tmp_path, [rec(1, "A", "new")])
    chosen = dataclasses.replace(
        settings(out, dry_run=True), base_url="https://secure.fusebill.com/v1", api_key=None
    )
    found = command_run.run(chosen, stdout=io.StringIO(), stderr=io.StringIO())
    assert (found.exit_code, found.summary.requests) == (0, 0)
    assert found.summary.counts[Status.VALID] == 1 and found.summary.changes[Change.UNDO] == 1
    other = dataclasses.replace(chosen, env={"FUSEBILL_BASE_URL": chosen.base_url})
    with pytest.raises(BatchLatchError) as caught:  # a URL that is set and differs refuses
        command_run.run(other, stdout=io.StringIO(), stderr=io.StringIO())
    assert URL in str(caught.value) and chosen.base_url in str(caught.value)


def test_undo_says_how_many_requests_and_how_long_before_sending(tmp_path: Path) -> None:
    out = job(tmp_path, [rec(1, "A", "new"), rec(2, "B", "new")])
    _, err = live(out, FakeFusebill({1: "A", 2: "B"}))
    assert "up to 4 requests" in err and "at up to 10000 requests/s: under a minute" in err
