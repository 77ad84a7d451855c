"""v4 One ledger: a real v3 job folder (``tests/fixtures/v3-job``, made by the v3 code with
``tests/fixtures/make_v3_job.py``) is taken into ``job.db`` by the first v4 command, losing
nothing: ``status``, ``status --customer``, re-runs and ``undo`` work on it as before, and
its old files stay byte for byte.

The v3 job's history (see the generator's docstring): a plan of ``sheet.csv`` (12 rows), a
run stopped by ``--max-requests 4``, its resume, a fed-back ``failed.csv`` fixing rows 7 and
9, a ``--fresh --allow-relatch`` run of ``sheet2.csv`` (the first checkpoint set aside), a
dry run, an ``undo --dry-run``, a run of ``sheet3.csv`` stopped by ``--max-requests 2``
(1000113 latched; v3 left a write-ahead record for 1000114, whose latch the stop kept from
leaving; 1000115 unsent).
Every number below is what that history gives; regenerating the fixture changes the run
folder names and times below (the outcomes stay).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from batch_latch.sandbox import Sandbox
from tests.integration.conftest import (
    FAST,
    Run,
    RunCli,
    SandboxFactory,
    StatusCli,
    UndoCli,
    holdings,
    latch_requests,
    read_csv,
    unlatch_requests,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v3-job"

PLAN = "20261207T105243.838Z-plan"
STOPPED = "20261207T105248.435Z-run"  # --max-requests 4
RESUMED = "20261207T105252.957Z-run"
FED_BACK = "20261207T105257.598Z-run"  # OUT/failed.csv, rows 7 and 9 fixed
FRESH = "20261207T105302.277Z-run"  # sheet2.csv --fresh --allow-relatch
DRY = "20261207T105306.457Z-dry-run"
UNDO_DRY = "20261207T105310.040Z-undo"  # undo --dry-run
LEFT = "20261207T105314.311Z-run"  # sheet3.csv --max-requests 2: two rows left
SET_ASIDE = "checkpoint-20261207T105302Z.csv.old"

#: Every customer the v3 job latched: (its latch's sheet row, fusebillId, geotabId set,
#: what it held before the job), in v3's own ``undo --dry-run`` order. 1000103, 1000106,
#: 1000108-1000111 were latched only by runs whose checkpoint ``--fresh`` set aside.
LATCHED = [
    (2, 1000101, "G-0101", ""),
    (3, 1000102, "G-0102B", ""),  # G-0102 (set aside), then relatched by the fresh run
    (4, 1000103, "G-0103", ""),
    (4, 1000105, "G-0105", "OLD-0105"),  # refused three times, relatched by the fresh run
    (7, 1000106, "G-0106", ""),  # row 7 fixed in failed.csv (was 12345)
    (9, 1000108, "G-0108", ""),  # row 9 fixed in failed.csv (was 1.00011E+06)
    (10, 1000109, "G-0109", ""),
    (12, 1000110, "G-0110", ""),
    (13, 1000111, "G-0111", ""),
    (5, 1000112, "G-0112", ""),
    (2, 1000113, "G-0113", ""),
    (3, 1000114, "G-0114", ""),  # its write-ahead record stands: the stop came before
]
CUSTOMERS = [1000101, 1000102, 1000103, 1000104, 1000105, 1000106, 1000108]
CUSTOMERS += [1000109, 1000110, 1000111, 1000112, 1000113, 1000114, 1000115]


@pytest.fixture
def job(tmp_path: Path, sandbox_factory: SandboxFactory) -> Iterator[tuple[Path, Sandbox]]:
    """A copy of the v3 job (``OUT`` is its ``out/``), and a v4 sandbox whose customers
    hold what the v3 sandbox's held at the end, at the job's own URL: the port the v3
    sandbox had, or, when that port is taken, another one written into the copy's
    checkpoints and summaries instead (the URL the job is bound to)."""
    root = tmp_path / "v3-job"
    shutil.copytree(FIXTURE, root)
    after = json.loads((root / "sandbox-after.json").read_text(encoding="utf-8"))
    preset = {int(fid): held for fid, held in after.items() if held}
    recorded = (root / "out" / "checkpoint.csv").read_text(encoding="utf-8").split(",")[2]
    recorded = recorded.splitlines()[0]
    try:
        sandbox = sandbox_factory(port=urlsplit(recorded).port, preset=preset)
    except OSError:
        sandbox = sandbox_factory(preset=preset)
        old, new = recorded.encode(), sandbox.base_url.encode()
        for path in root.rglob("*"):
            if path.suffix in (".csv", ".old", ".json") and old in path.read_bytes():
                path.write_bytes(path.read_bytes().replace(old, new))
    assert sandbox.base_url == recorded or recorded not in _texts(root / "out")
    yield root, sandbox


def _texts(out: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in out.rglob("*.csv*"))


def _files(out: Path) -> dict[str, bytes]:
    """The job folder's files and their bytes; not ``.lock``, which says who holds the job now."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


def test_the_first_v4_command_takes_the_v3_job_in_and_counts_what_it_did(
    job: tuple[Path, Sandbox], status_cli: StatusCli
) -> None:
    root, sandbox = job
    out = root / "out"
    before = _files(out)
    assert "job.db" not in before and SET_ASIDE in before

    first = status_cli(out, "--json")

    assert first.returncode == 0, first.stderr
    assert first.stderr_lines("Taking the v3 job in") == [
        f"Taking the v3 job in {out} into job.db (its files stay)..."
    ]
    assert (out / "job.db").is_file()
    now = _files(out)
    assert {name: now[name] for name in before} == before  # checkpoints, runs: byte for byte
    assert set(now) - set(before) <= {"job.db", "job.db-wal", "job.db-shm"}
    status = json.loads(first.stdout)
    v3 = json.loads((root / "v3-status.json").read_text(encoding="utf-8"))
    # 17 pairs: 12 latched or already held; 1000102/G-0102 replaced by the fresh run's
    # relatch; 12345/G-0106 fixed through failed.csv (row 7 became 1000106); 99999 not
    # found; 1000114 writing (v3's write-ahead record of the stopped run: possibly landed
    # until a read settles it); 1000115 never sent.
    assert {k: v for k, v in status["counts"].items() if v} == {
        "success": 12,
        "replaced": 1,
        "fixed": 1,
        "not_found": 1,
        "writing": 1,
        "pending": 1,
    }
    assert (
        status["in_fusebill"] == v3["in_fusebill"] == {"latched": 11, "restored": 0, "unknown": 1}
    )
    assert status["left_rows"] == v3["left_rows"] == 2  # sheet3.csv's rows 3 and 4
    assert status["requests_by_day"] == v3["requests_by_day"] == {"2026-12-07": 22}
    assert [(r["folder"], r["kind"], r["user"], r["exit_code"]) for r in status["runs"]] == [
        (PLAN, "plan", "root", 1),
        (STOPPED, "run", "root", 3),
        (RESUMED, "run", "root", 1),
        (FED_BACK, "run", "root", 1),
        (FRESH, "run", "root", 0),
        (DRY, "dry_run", "root", 1),
        (UNDO_DRY, "undo_dry_run", "root", 0),
        (LEFT, "run", "root", 3),
    ]
    assert sandbox.requests_log() == []

    again = status_cli(out, "--json")
    assert again.returncode == 0
    assert again.stderr_lines("Taking") == []
    assert json.loads(again.stdout)["counts"] == status["counts"]
    assert {name: _files(out)[name] for name in before} == before


def test_status_customer_tells_the_v3_history(
    job: tuple[Path, Sandbox], status_cli: StatusCli
) -> None:
    out = job[0] / "out"
    story = status_cli(out, "--customer", "1000105", "--json")

    assert story.returncode == 0, story.stderr
    events = json.loads(story.stdout)["events"]
    assert [(e["run"], e["kind"], e["user"], e["status"], e["change"]) for e in events] == [
        (PLAN, "plan", "root", "valid", "relatch"),
        (STOPPED, "run", "root", "failed", ""),
        (RESUMED, "run", "root", "failed", ""),
        (FED_BACK, "run", "root", "failed", ""),
        (FRESH, "run", "root", "success", "relatch"),
    ]
    assert {(e["geotabId"], e["previous_geotabId"]) for e in events} == {("G-0105", "OLD-0105")}
    assert events[-1]["message"] == "latched; replaced 'OLD-0105'"
    # What v3's own `status --customer` said, but for what v4 makes no event of: a dry run
    # (of a run or an undo), and a re-run's row that only shows a pair settled earlier.
    for fid in (1000102, 1000105, 1000106):
        v3 = json.loads((job[0] / f"v3-story-{fid}.json").read_text(encoding="utf-8"))
        v4 = status_cli(out, "--customer", str(fid), "--json")
        assert json.loads(v4.stdout) == {
            "fusebillId": fid,
            "events": [
                e
                for e in v3["events"]
                if e["kind"] not in ("dry-run", "undo (dry run)")
                and e["message"] != "latched earlier; not sent again"
            ],
        }

    relatched = json.loads(status_cli(out, "--customer", "1000102", "--json").stdout)["events"]
    assert [(e["run"], e["geotabId"], e["change"]) for e in relatched] == [
        (PLAN, "G-0102", "new"),
        (STOPPED, "G-0102", "new"),  # only the set-aside checkpoint holds this latch
        (FRESH, "G-0102B", "relatch"),
    ]
    unknown = status_cli(out, "--customer", "1000107")
    assert unknown.returncode == 2
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_a_rerun_of_the_sheet_sends_no_write_for_what_the_v3_job_latched(
    job: tuple[Path, Sandbox], run_cli: RunCli
) -> None:
    root, sandbox = job
    rerun = run_cli(root / "sheet.csv", sandbox.base_url, *FAST, out=root / "out")

    assert rerun.returncode == 1, rerun.stderr
    assert latch_requests(sandbox) == [] and unlatch_requests(sandbox) == []
    assert {row: (r["status"], r["error_key"]) for row, r in _rows(rerun).items()} == {
        2: ("success", "latched_earlier"),  # the fresh run's pair
        3: ("failed", "relatch_refused"),  # holds G-0102B since the fresh run
        4: ("success", ""),  # holds G-0103 (the set-aside checkpoint's latch): unchanged
        5: ("success", ""),
        6: ("success", "latched_earlier"),  # the fresh run's relatch
        7: ("not_found", "not_found"),
        8: ("not_found", "not_found"),
        9: ("invalid", "invalid_fusebill_id"),
        10: ("success", ""),
        11: ("duplicate", "duplicate_row"),
        12: ("success", ""),
        13: ("success", ""),
    }
    assert json.loads((rerun.folder() / "summary.json").read_text())["writes"] == 0
    assert holdings(sandbox, CUSTOMERS) == {
        fid: held for fid, held in _after(root).items() if fid in CUSTOMERS
    }


def test_undo_dry_run_lists_every_customer_the_v3_job_latched(
    job: tuple[Path, Sandbox], undo_cli: UndoCli
) -> None:
    root, sandbox = job
    dry = undo_cli(sandbox.base_url, "--dry-run", out=root / "out")

    assert dry.returncode == 0, dry.stderr
    listed = [
        (int(r["row"]), int(r["fusebillId"]), r["geotabId"], r["previous_geotabId"])
        for r in _results(dry)
    ]
    assert listed == sorted(LATCHED)  # in sheet-row order (issue #26), by customer within a row
    assert {r["status"] for r in _results(dry)} == {"valid"}
    assert sandbox.requests_log() == []


def test_undo_puts_back_what_the_v3_job_latched(
    job: tuple[Path, Sandbox], undo_cli: UndoCli, status_cli: StatusCli
) -> None:
    root, sandbox = job
    undo = undo_cli(sandbox.base_url, *FAST, out=root / "out")

    assert undo.returncode == 0, undo.stderr
    assert {int(r["fusebillId"]): r["status"] for r in _results(undo)} == {
        fid: "success" for _, fid, _, _ in LATCHED
    }
    assert holdings(sandbox, CUSTOMERS) == {
        1000101: None,
        1000102: None,
        1000103: None,
        1000104: "G-0104",  # held it before the job: never written
        1000105: "OLD-0105",
        1000106: None,
        1000108: None,
        1000109: None,
        1000110: None,
        1000111: None,
        1000112: None,
        1000113: None,
        1000114: None,
        1000115: None,
    }
    assert len(unlatch_requests(sandbox)) == 10
    assert [r.fusebill_id for r in latch_requests(sandbox)] == [1000105]
    status = json.loads(status_cli(root / "out", "--json").stdout)
    assert status["in_fusebill"] == {"latched": 0, "restored": 12, "unknown": 0}, status
    assert status["counts"]["success"] == 1  # 1000104, which the job never wrote


def _results(run: Run) -> list[dict[str, str]]:
    """The command's own results.csv (its run folder's: the fixture's copy with its URL
    rewritten keeps ``OUT/``'s reports as the user's, so they may not be refreshed)."""
    return read_csv(run.folder() / "results.csv")


def _rows(run: Run) -> dict[int, dict[str, str]]:
    return {int(r["row"]): r for r in _results(run)}


def _after(root: Path) -> dict[int, str | None]:
    after = json.loads((root / "sandbox-after.json").read_text(encoding="utf-8"))
    return {int(fid): held for fid, held in after.items()}
