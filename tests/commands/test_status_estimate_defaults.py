"""``status``'s estimate when the job says nothing of its pace: the contract's defaults,
written here as literals (``--rate`` 10 a second, ``--read-batch`` 100 customers a
request), never imported from the code they pin.

A job whose only command was killed has no ``summary.json``; a summary written by an
older version has no ``read_batch`` and a ``rate`` of 0. Either way the estimate falls back
to the defaults, so an ops lead reading ``status`` sees what a run with no options would
cost and take."""

from __future__ import annotations

from pathlib import Path

from batch_latch.commands import status
from tests.commands.test_status import killed_job, pending_job

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
    out = pending_job(
        tmp_path,
        LEFT,
        read_first=True,
        account_limits=None,
        version="older",
        without=("read_batch", "rate"),  # what an older version's summary.json lacks
    )
    got = status.collect(out)
    assert got.left_requests == REQUESTS_AT_READ_BATCH_100
    assert got.estimate == AT_RATE_10
