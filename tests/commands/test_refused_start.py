"""Contract v4 "A refused connection before any answer is a stop": with the default
``--read-batch`` (list reads), a small sheet against a closed port stops, exit 3, every row
``pending``, one line naming host:port and FUSEBILL_BASE_URL; the job stays unbound."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import pytest

from batch_latch import cli
from batch_latch.settings import KEY_VARIABLE, URL_VARIABLE


def test_a_closed_port_on_the_first_list_read_is_a_stop_not_300_failures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(KEY_VARIABLE, "sk_live_REFUSED_1")
    monkeypatch.setenv(URL_VARIABLE, f"http://127.0.0.1:{port}/v1")
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "in.csv"
    lines = ["fusebillId,geotabId", *(f"{1_000_000 + i},G{i:05d}" for i in range(300))]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code = cli.main(["run", str(source), "--out", str(out), "--no-progress", "--max-attempts", "2"])
    err = capsys.readouterr().err
    assert code == 3, err
    stops = [line for line in err.splitlines() if line.startswith("Stopped:")]
    assert len(stops) == 1, err
    assert stops[0].startswith(f"Stopped: could not connect to 127.0.0.1:{port} (")
    assert "check FUSEBILL_BASE_URL (host and port)" in stops[0]
    assert "300 rows are pending" in stops[0]
    with (out / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        statuses = {row["status"] for row in csv.DictReader(handle)}
    assert statuses == {"pending"}
