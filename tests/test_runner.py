"""The runner's own logic with requests-mock: per-row decisions, matching earlier outcomes,
dictionary-coded result columns, and a checkpoint failure surfacing in the main thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import requests
import requests_mock as rm
from pydantic import SecretStr

from batch_latch import report, runner
from batch_latch.checkpoint import Checkpoint, JournalWriteError
from batch_latch.client import FusebillClient
from batch_latch.config import RunSettings
from batch_latch.progress import Silent
from batch_latch.throttle import Throttle
from tests.test_checkpoint import FullDisk

BASE = "https://fusebill.test/v1"
LATCH = f"{BASE}/Geotab/LatchCustomer"
KEY = "sk_live_RUNNER_SECRET"


def make_runner(tmp_path: Path, **overrides: Any) -> runner.Runner:
    options: dict[str, Any] = {"rate": 1000.0, "workers": 2, "max_attempts": 3, **overrides}
    settings = RunSettings(
        input=tmp_path / "in.csv",
        out=tmp_path / "out",
        base_url=BASE,
        api_key=SecretStr(KEY),
        **options,
    )
    client = FusebillClient(BASE, KEY, timeout=2.0, pool_size=2)
    store = Checkpoint.open(settings.out, BASE)
    return runner.Runner(settings, client, Throttle(settings.rate), store, Silent())


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BACKOFF_BASE", 0.001)


def customer(geotab_id: str | None) -> dict[str, Any]:
    return {"id": 1000001, "geotabId": geotab_id, "uri": "/customers/1000001"}


TASK = runner.Task(index=0, row=2, fusebill_id=1000001, geotab_id="0909909")


def test_success_on_the_first_attempt(tmp_path: Path) -> None:
    with rm.Mocker() as mock:
        mock.post(LATCH, json=customer("0909909"))
        outcome = make_runner(tmp_path).process(TASK)

    assert (outcome.status, outcome.http_status, outcome.attempts) == ("success", 200, 1)
    assert mock.last_request.json() == {"fusebillId": 1000001, "geotabId": "0909909"}


def test_5xx_is_retried_then_fails_after_max_attempts(tmp_path: Path) -> None:
    with rm.Mocker() as mock:
        mock.post(LATCH, status_code=503, json={"Errors": [{"Value": "busy"}]})
        outcome = make_runner(tmp_path).process(TASK)

    assert outcome.status == "failed"
    assert outcome.attempts == 3 and mock.call_count == 3
    assert "gave up after 3 attempts" in outcome.message


def test_a_429_does_not_use_up_attempts(tmp_path: Path) -> None:
    answers = [
        {"status_code": 429, "json": {"Errors": [{"Value": "Rate limit exceeded"}]}},
        {"status_code": 429, "json": {"Errors": [{"Value": "Rate limit exceeded"}]}},
        {"status_code": 503, "json": {}},
        {"status_code": 200, "json": customer("0909909")},
    ]
    for answer in answers:
        answer["headers"] = {"Retry-After": "0"}
    with rm.Mocker() as mock:
        mock.post(LATCH, answers)
        outcome = make_runner(tmp_path, max_attempts=2).process(TASK)

    assert (outcome.status, outcome.attempts) == ("success", 4)


def test_read_back_confirms_only_the_geotab_id_sent(tmp_path: Path) -> None:
    read = f"{BASE}/customers/1000001"
    with rm.Mocker() as mock:
        mock.post(
            LATCH,
            [{"exc": requests.exceptions.ConnectionError("reset")}, {"status_code": 409}],
        )
        mock.get(read, json=customer("0909909"))
        confirmed = make_runner(tmp_path).process(TASK)

    assert confirmed.status == "success"
    assert "confirmed by read-back" in confirmed.message

    with rm.Mocker() as mock:
        mock.post(
            LATCH,
            [{"exc": requests.exceptions.ConnectionError("reset")}, {"status_code": 409}],
        )
        mock.get(read, json=customer(None))  # not latched: the repeat was refused for real
        refused = make_runner(tmp_path / "2").process(TASK)

    assert refused.status == "failed"
    assert "could not confirm" in refused.message


def test_a_400_without_an_earlier_unanswered_attempt_is_not_read_back(tmp_path: Path) -> None:
    with rm.Mocker() as mock:
        mock.post(LATCH, status_code=400, json={"Errors": [{"Value": "not eligible"}]})
        outcome = make_runner(tmp_path).process(TASK)

    assert (outcome.status, outcome.message) == ("failed", "not eligible")
    assert [r.method for r in mock.request_history] == ["POST"]


def test_a_checkpoint_failure_in_a_worker_stops_the_run_in_the_main_thread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooked: list[object] = []
    previous = threading.excepthook
    threading.excepthook = hooked.append  # a worker dying with a traceback would land here
    try:
        pool = make_runner(tmp_path)
        pool.checkpoint._handle = FullDisk()  # type: ignore[assignment]
        tasks = [runner.Task(i, i + 2, 1000000 + i, f"G{i}") for i in range(6)]
        with rm.Mocker() as mock:
            mock.post(LATCH, json={"geotabId": None})
            with pytest.raises(JournalWriteError):
                pool.run(tasks)
    finally:
        threading.excepthook = previous

    assert hooked == []
    assert pool.throttle.stop_reason == "checkpoint_error"
    assert "Traceback" not in capsys.readouterr().err


def journal(records: list[tuple[int, str]]) -> pa.Table:
    return pa.table(
        {
            "f": pa.array([f for f, _ in records], pa.int64()),
            "g": pa.array([g for _, g in records], pa.string()),
        }
    )


def test_latest_records_match_pairs_not_just_ids() -> None:
    earlier = journal([(1, "A"), (2, "X"), (1, "B"), (3, "C"), (1, "A")])
    fids = np.array([1, 2, 3, 4], dtype=np.int64)
    gids = pa.array(["A", "Y", "C", "D"], pa.string())

    latest = runner._latest_records(fids, gids, earlier)

    # (1, A): its latest record is the last line, although (1, B) came in between;
    # (2, Y): only (2, X) is known; (3, C): line 3; (4, D): never seen.
    assert latest.tolist() == [4, -1, 3, -1]


def test_text_column_overlays_values_and_counts_add_up() -> None:
    column = runner._TextColumn(pa.array(["valid", "invalid", "valid", "valid"]), 4)
    column.put(np.array([0]), "success")
    column.put(np.array([2, 3]), pa.array(["success", "not_found"]))
    values = column.array()

    assert values.to_pylist() == ["success", "invalid", "success", "not_found"]
    # "success" sits under two codes of the dictionary: counts still add up.
    assert report.count_statuses(values)["success"] == 2
