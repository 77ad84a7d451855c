"""The job folder's history: run folders that never collide, one command at a time (also after
a holder is killed), and publishing the latest reports without touching the user's files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from batch_latch.jobfolder import files, history
from batch_latch.jobfolder.history import ReportPaths
from batch_latch.vocab import RunKind

STARTED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_run_folder_names_never_collide(tmp_path: Path) -> None:
    made = [history.new_run_folder(tmp_path, RunKind.RUN, STARTED) for _ in range(4)]
    assert [p.name for p in made] == [
        "20260301T120000.000Z-run",
        "20260301T120000.000Z-run-2",
        "20260301T120000.000Z-run-3",
        "20260301T120000.000Z-run-4",
    ]
    assert all(p.is_dir() and p.parent == tmp_path / "runs" for p in made)
    other = history.new_run_folder(tmp_path, RunKind.UNDO, STARTED)
    assert other.name == "20260301T120000.000Z-undo"


def test_the_input_is_copied_into_the_run_folder(tmp_path: Path) -> None:
    source = tmp_path / "sheet.csv"
    source.write_bytes(b"fusebillId,geotabId\r\n1,A\r\n")
    folder = history.new_run_folder(tmp_path / "out", RunKind.PLAN, STARTED)
    assert history.copy_input(source, folder, history.sha256(source)) is None
    assert (folder / "input-sheet.csv").read_bytes() == source.read_bytes()
    assert not (folder / history.NO_INPUT_COPY).exists()


def test_a_deleted_input_leaves_a_note_instead_of_a_copy(tmp_path: Path) -> None:
    source = tmp_path / "sheet.csv"
    source.write_bytes(b"fusebillId,geotabId\r\n1,A\r\n")
    loaded = history.sha256(source)
    source.unlink()
    folder = history.new_run_folder(tmp_path / "out", RunKind.RUN, STARTED)
    note = history.copy_input(source, folder, loaded)
    assert note and "no copy of the input" in note
    assert list(folder.iterdir()) == [folder / history.NO_INPUT_COPY]
    assert loaded in (folder / history.NO_INPUT_COPY).read_text(encoding="utf-8")


def test_a_truncated_input_is_not_passed_off_as_the_input(tmp_path: Path) -> None:
    source = tmp_path / "sheet.csv"
    source.write_bytes(b"fusebillId,geotabId\r\n1,A\r\n2,B\r\n")
    loaded = history.sha256(source)
    source.write_bytes(b"fusebillId,geotabId\r\n")
    folder = history.new_run_folder(tmp_path / "out", RunKind.RUN, STARTED)
    note = history.copy_input(source, folder, loaded)
    assert note and "changed while the command ran" in note
    assert not (folder / "input-sheet.csv").exists()
    assert "changed while the command ran" in (folder / history.NO_INPUT_COPY).read_text()


def test_a_damaged_published_record_refreshes_out_keeping_what_was_there(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    folder = history.new_run_folder(out, RunKind.RUN, STARTED)
    for name in ("results.csv", "failed.csv", "summary.json"):
        (folder / name).write_text(f"new {name}")
        (out / name).write_text(f"old {name}")
    (out / history.PUBLISHED).write_text('{"results.csv": "12:3', encoding="utf-8")
    paths = history.ReportPaths(
        folder / "results.csv", folder / "failed.csv", folder / "summary.json"
    )
    kept = history.publish(out, paths, None)
    for name in ("results.csv", "failed.csv", "summary.json"):
        assert (out / name).read_text() == f"new {name}"
        stem, suffix = name.split(".")
        (aside,) = out.glob(f"{stem}.kept-*.{suffix}")
        assert aside.read_text() == f"old {name}"
    assert len(kept) == 3 and all("was damaged" in line for line in kept)
    # The record is whole again: the next publish replaces the files without a word.
    assert history.publish(out, paths, None) == []


# --- the lock --------------------------------------------------------------------------------


def test_a_busy_job_is_refused_with_exit_2_and_free_again_after(tmp_path: Path) -> None:
    with history.lock(tmp_path):
        with pytest.raises(history.JobBusy) as caught, history.lock(tmp_path):
            pass
        assert caught.value.exit_code == 2
        assert "busy" in str(caught.value) and "\n" not in str(caught.value)
        assert "pid" in (tmp_path / history.LOCK).read_text(encoding="utf-8")
    with history.lock(tmp_path):  # released when the holder closed
        pass


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from batch_latch.jobfolder import files, history

    with history.lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def test_a_lock_held_by_a_killed_process_is_released(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"  # blocks until it holds the lock
        with pytest.raises(history.JobBusy), history.lock(tmp_path):
            pass
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    with history.lock(tmp_path):
        pass


# --- publish ---------------------------------------------------------------------------------


def reports(folder: Path, text: str, xlsx: bool = False) -> ReportPaths:
    folder.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(
        results=folder / "results.csv",
        failed=folder / "failed.csv",
        summary=folder / "summary.json",
        xlsx=folder / "results.xlsx" if xlsx else None,
    )
    for path in paths.all():
        path.write_text(f"{text} {path.name}", encoding="utf-8")
    return paths


def test_publish_copies_the_latest_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    kept = history.publish(out, reports(out / "runs" / "a", "first", xlsx=True), None)
    assert kept == []
    assert (out / "results.csv").read_text(encoding="utf-8") == "first results.csv"
    history.publish(out, reports(out / "runs" / "b", "second", xlsx=True), None)
    for name in ("results.csv", "failed.csv", "summary.json", "results.xlsx"):
        assert (out / name).read_text(encoding="utf-8") == f"second {name}"
    record = json.loads((out / history.PUBLISHED).read_text(encoding="utf-8"))
    assert set(record) == {"results.csv", "failed.csv", "summary.json", "results.xlsx"}


def test_publish_never_overwrites_the_input_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history.publish(out, reports(out / "runs" / "a", "first"), None)
    edited = out / "failed.csv"
    edited.write_text("fusebillId,geotabId\n1,FIXED\n", encoding="utf-8")  # fed back, edited
    kept = history.publish(out, reports(out / "runs" / "b", "second"), edited)
    assert edited.read_text(encoding="utf-8") == "fusebillId,geotabId\n1,FIXED\n"
    assert len(kept) == 1 and "input" in kept[0] and str(edited) in kept[0]
    assert (out / "results.csv").read_text(encoding="utf-8") == "second results.csv"


def test_an_edited_report_fed_back_is_refreshed_by_the_next_command(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history.publish(out, reports(out / "runs" / "a", "first"), None)
    edited = out / "failed.csv"
    edited.write_text("fusebillId,geotabId\n1,FIXED\n", encoding="utf-8")
    history.publish(out, reports(out / "runs" / "b", "dry"), edited)  # fed back: kept
    history.publish(out, reports(out / "runs" / "c", "run"), edited)  # fed back again: kept
    assert edited.read_text(encoding="utf-8") == "fusebillId,geotabId\n1,FIXED\n"

    kept = history.publish(out, reports(out / "runs" / "d", "rerun"), None)

    assert kept == []
    assert edited.read_text(encoding="utf-8") == "rerun failed.csv"


def test_an_edited_report_edited_again_after_feeding_back_is_left(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history.publish(out, reports(out / "runs" / "a", "first"), None)
    edited = out / "failed.csv"
    edited.write_text("fusebillId,geotabId\n1,FIXED\n", encoding="utf-8")
    history.publish(out, reports(out / "runs" / "b", "dry"), edited)
    edited.write_text("fusebillId,geotabId\n1,FIXED AGAIN\n", encoding="utf-8")

    kept = history.publish(out, reports(out / "runs" / "c", "rerun"), None)

    assert any("changed since" in line for line in kept)
    assert "FIXED AGAIN" in edited.read_text(encoding="utf-8")


def test_publish_leaves_a_file_the_user_edited(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history.publish(out, reports(out / "runs" / "a", "first"), None)
    (out / "results.csv").write_text("my notes", encoding="utf-8")
    kept = history.publish(out, reports(out / "runs" / "b", "second"), None)
    assert (out / "results.csv").read_text(encoding="utf-8") == "my notes"
    assert any("changed since" in line for line in kept)
    assert (out / "failed.csv").read_text(encoding="utf-8") == "second failed.csv"


def test_publish_removes_a_stale_results_xlsx(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history.publish(out, reports(out / "runs" / "a", "first", xlsx=True), None)
    assert (out / "results.xlsx").exists()
    history.publish(out, reports(out / "runs" / "b", "big sheet", xlsx=False), None)
    assert not (out / "results.xlsx").exists()
    record = json.loads((out / history.PUBLISHED).read_text(encoding="utf-8"))
    assert "results.xlsx" not in record


def test_publish_keeps_a_results_xlsx_the_user_edited(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history.publish(out, reports(out / "runs" / "a", "first", xlsx=True), None)
    (out / "results.xlsx").write_text("edited in Excel", encoding="utf-8")
    history.publish(out, reports(out / "runs" / "b", "second", xlsx=False), None)
    assert (out / "results.xlsx").read_text(encoding="utf-8") == "edited in Excel"


def test_publish_leaves_no_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history.publish(out, reports(out / "runs" / "a", "first", xlsx=True), None)
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        history.PUBLISHED,
        "failed.csv",
        "results.csv",
        "results.xlsx",
        "summary.json",
    ]


def test_user_host_and_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert (
        history.sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert history.user() and history.host()


def test_run_folders_of_one_second_sort_in_the_order_they_ran(tmp_path: Path) -> None:
    first = history.new_run_folder(tmp_path, RunKind.RUN, STARTED.replace(microsecond=120_000))
    second = history.new_run_folder(tmp_path, RunKind.DRY_RUN, STARTED.replace(microsecond=480_000))
    assert sorted([second.name, first.name]) == [first.name, second.name]


def test_a_report_locked_by_another_program_is_kept_back_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "runs" / "r"
    folder.mkdir(parents=True)
    paths = ReportPaths(folder / "results.csv", folder / "failed.csv", folder / "summary.json")
    for p in paths.all():
        p.write_text(p.name, encoding="utf-8")
    real_copy = files.atomic_copy

    def locked(source: Path, target: Path) -> None:
        if target.name == "results.csv":
            raise PermissionError(13, "The process cannot access the file", str(target))
        real_copy(source, target)

    monkeypatch.setattr(history, "atomic_copy", locked)
    kept = history.publish(tmp_path, paths, None)
    assert len(kept) == 1 and "results.csv" in kept[0] and "open in another program" in kept[0]
    assert (tmp_path / "failed.csv").read_text(encoding="utf-8") == "failed.csv"
    assert not (tmp_path / "results.csv").exists()
