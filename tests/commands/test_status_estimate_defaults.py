"""``status``'s estimate when the job says nothing of its pace: the contract's defaults,
written here as literals (``--rate`` 10 a second, ``--read-batch`` 100 customers a
request), never imported from the code they pin.

A job whose only command was killed has no ``summary.json``; a summary written by an
older version has no ``read_batch`` and a ``rate`` of 0. Either way the estimate falls back
to the defaults, so an ops lead reading ``status`` sees what a run with no options would
cost and take."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from batch_latch.commands import status
from batch_latch.jobfolder.history import RUNS
from batch_latch.reports.writer import Summary
from batch_latch.vocab import RunKind, Status, StopReason
from tests.commands.test_status import killed_job

#: 1,000 customers left, read 100 a request (10 reads) and written one a request.
LEFT = 1_000
REQUESTS_AT_READ_BATCH_100 = 10 + 1_000
#: 1,010 requests at 10 a second: 101 s, said as "about 2 min".
AT_RATE_10 = "about 2 min at --rate 10"


def test_a_job_with_no_finished_run_is_estimated_at_rate_10_and_100_reads_a_request(
    tmp_path: Path,
) -> None:
    out = tmp_path / "job"
    killed_job(out, LEFT, [])
    got = status.collect(out)
    assert got.left_rows == LEFT
    assert got.left_requests == REQUESTS_AT_READ_BATCH_100
    assert got.estimate == AT_RATE_10


def test_an_older_summary_without_rate_or_read_batch_is_estimated_at_the_defaults(
    tmp_path: Path,
) -> None:
    out = tmp_path / "job"
    run_id = killed_job(out, LEFT, [])
    folder = out / RUNS / run_id
    folder.mkdir(parents=True)
    data = asdict(
        Summary(
            input="/data/in.csv",
            dry_run=False,
            rows=LEFT,
            counts={Status.PENDING: LEFT},
            requests=0,
            started_at="2026-03-01T11:00:00Z",
            finished_at="2026-03-01T11:00:01Z",
            exit_code=3,
            kind=RunKind.RUN,
            reads=0,
            writes=0,
            changes={},
            stop_reason=StopReason.MAX_REQUESTS,
            user="ops",
            host="desk",
            input_sha256="9" * 64,
            version="older",
        )
    )
    del data["read_batch"], data["rate"]  # what an older version's summary.json lacks
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    got = status.collect(out)
    assert got.left_requests == REQUESTS_AT_READ_BATCH_100
    assert got.estimate == AT_RATE_10
