"""v2 honest answers on a real network: a 2xx proves itself or is read back. (Redirects, a
wrong URL, Retry-After storms and long pauses are in ``test_network_cli``.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FAST,
    RunCli,
    SandboxFactory,
    known_rows,
    latch_requests,
    read_requests,
    write_csv,
)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["html_200_rate", "empty_200_rate"])
def test_a_2xx_that_proves_nothing_is_not_success_and_is_sent_again(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli, fault: str
) -> None:
    bad = sandbox_factory(**{fault: 1.0})
    rows = known_rows(3)
    source = write_csv(tmp_path / "in.csv", rows)

    first = run_cli(source, bad.base_url, *FAST)

    assert first.returncode == 1, first.stderr
    for row in first.results():
        assert (row["status"], row["error_key"]) == ("failed", "unconfirmed"), row
        assert row["change"] == ""
    # One list read of the three, then per row a latch (a 200 that proves nothing) and a
    # read-back of that customer alone: 4 reads, 3 latches.
    assert len(read_requests(bad)) == 4
    assert len(latch_requests(bad)) == 3
    for fid, _ in rows:
        reads, latch = read_requests(bad, fid), latch_requests(bad, fid)[0]
        assert [r.is_list for r in reads] == [True, False]
        assert reads[0].at <= latch.at <= reads[1].at
    port = bad.port
    bad.stop()

    healthy = sandbox_factory(port=port)  # the same URL, now answering properly
    second = run_cli(source, healthy.base_url, *FAST)

    assert second.returncode == 0, second.stderr
    assert {r["status"] for r in second.results()} == {"success"}
    assert "earlier" not in second.results()[0]["message"]
    assert len(latch_requests(healthy)) == 3
    for fid, gid in rows:
        assert healthy.geotab_id_of(fid) == gid


@pytest.mark.slow
def test_a_latch_applied_then_answered_504_is_found_by_read_back(
    tmp_path: Path, sandbox_factory: SandboxFactory, run_cli: RunCli
) -> None:
    sandbox = sandbox_factory(applied_then_504_rate=1.0)
    rows = known_rows(2)
    source = write_csv(tmp_path / "in.csv", rows)

    run = run_cli(source, sandbox.base_url, "--max-attempts", "2", *FAST)

    assert run.returncode == 0, run.stderr
    for row in run.results():
        assert (row["status"], row["change"]) == ("success", "new"), row
        assert "read-back" in row["message"]
    for fid, gid in rows:
        assert sandbox.geotab_id_of(fid) == gid
    assert Counter(r.status for r in latch_requests(sandbox)) == {504: 4}
