"""A bug on a few rows of a real run over HTTP: the rows fail, the run goes on, and the
first tracebacks are kept beside the reports (issue #27), secrets redacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batch_latch import cli
from batch_latch.send import decisions
from tests.integration.conftest import KEY, SandboxFactory


def test_a_bug_on_some_rows_keeps_their_tracebacks_beside_the_reports(
    tmp_path: Path,
    sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory()
    real = decisions.RowLogic.process

    def buggy(self: decisions.RowLogic, task: decisions.Task) -> Any:
        if task.fusebill_id == 2000002:
            raise KeyError(f"bug near {KEY}")
        return real(self, task)

    monkeypatch.setattr(decisions.RowLogic, "process", buggy)
    monkeypatch.setenv("FUSEBILL_API_KEY", KEY)
    monkeypatch.setenv("FUSEBILL_BASE_URL", sandbox.base_url)
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "in.csv"
    source.write_text("fusebillId,geotabId\n2000001,G1\n2000002,G2\n", encoding="utf-8")

    code = cli.main(["run", str(source), "--no-progress"])

    assert code == 1  # one row failed by the bug, the other latched
    err = capsys.readouterr().err
    kept = list((tmp_path / "in-latch" / "runs").glob("*-run/row-errors.txt"))
    assert len(kept) == 1 and str(kept[0]) in err
    text = kept[0].read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "KeyError" in text
    assert KEY not in text and KEY not in err
