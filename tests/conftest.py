"""Shared helpers for the input-side tests: real files in, real files out.

The helpers build files with the standard library and openpyxl only (never with the code
under test), so a test's expectation does not come from the implementation itself.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Bytecode caches even where PYTHONDONTWRITEBYTECODE is set (this project's own machines set
# it): the suite's workers and its few hundred CLI children would each compile the package,
# and the workers rewrite every test module, from source every time (about 5 s of a run on
# 2 cores). A cache is only a cache: __pycache__ is ignored by git.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def _temp_in_memory(root: Path = Path("/dev/shm"), room: int = 2 << 30) -> None:
    """Temporary folders (``tmp_path``, ``tempfile``, the CLI children's) in memory where the
    machine has a big enough tmpfs and the user chose no other place: every ledger commits
    with ``synchronous=FULL``, and on this project's machines a disk's fsyncs were a third
    of some files' time. What the tests prove does not depend on the disk (a killed process
    leaves its writes in the page cache; the full-disk tests mount a tmpfs of their own)."""
    if {"TMPDIR", "PYTEST_DEBUG_TEMPROOT"} & set(os.environ) or not root.is_dir():
        return
    try:
        stat = os.statvfs(root)
    except OSError:
        return
    if stat.f_bavail * stat.f_frsize >= room and os.access(root, os.W_OK | os.X_OK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = os.environ["TMPDIR"] = str(root)
        tempfile.tempdir = None  # read TMPDIR again


_temp_in_memory()

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CSV = REPO / "sample_data" / "latch-sample.csv"
SAMPLE_XLSX = REPO / "sample_data" / "latch-sample.xlsx"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def write_csv(
    path: Path,
    records: Iterable[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
    lineterminator: str = "\r\n",
) -> Path:
    """Write ``records`` with Python's csv module (quoting where needed) and return ``path``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=lineterminator)
    for record in records:
        writer.writerow(record)
    data = buffer.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@dataclass(frozen=True)
class Cell:
    """An xlsx cell with a number format, e.g. ``Cell(909909, "0000000")``."""

    value: Any
    number_format: str | None = None


def write_xlsx(path: Path, sheets: Mapping[str, Mapping[int, Sequence[Any]]]) -> Path:
    """Write a workbook: ``{sheet: {row_number: [cell values]}}``; missing rows stay empty.

    ``None`` leaves a cell empty; strings are stored as text (even ``=...``); ints and floats
    as numbers; :class:`Cell` adds a number format.
    """
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row_number, values in rows.items():
            for col_number, item in enumerate(values, start=1):
                spec = item if isinstance(item, Cell) else Cell(item)
                if spec.value is None:
                    continue
                cell = sheet.cell(row=row_number, column=col_number)
                cell.value = spec.value
                if isinstance(spec.value, str):
                    cell.data_type = "s"
                if spec.number_format:
                    cell.number_format = spec.number_format
    workbook.save(path)
    return path


def read_csv_records(path: Path) -> list[list[str]]:
    """Parse a report with the csv module (independent of the loader), BOM removed."""
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff"), f"{path.name} has no UTF-8 BOM"
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBILL_")}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def cli_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "batch_latch", *map(str, args)]


def run_cli(*args: str | Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )


def run_cli_many(
    commands: Sequence[Sequence[str | Path]], *, cwd: Path, timeout: float = 60
) -> list[subprocess.CompletedProcess[str]]:
    """Run several CLI invocations at once (start-up dominates; this uses both cores)."""
    procs = [
        subprocess.Popen(
            cli_command(*args),
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        for args in commands
    ]
    results = []
    try:
        for args, proc in zip(commands, procs):
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(list(args), proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, exactly one line on stderr, no traceback; returns that line."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("batch-latch: error: "), lines[0]
    assert result.stderr.endswith("\n")
    return lines[0]


def assert_one_line(message: str) -> None:
    assert message.strip(), "empty error message"
    assert "\n" not in message and "\r" not in message, repr(message)
    assert "Traceback" not in message


@pytest.fixture(scope="session")
def small_xlsx_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real, valid two-sheet workbook's bytes, for truncation and damage tests."""
    path = tmp_path_factory.mktemp("xlsx") / "real.xlsx"
    write_xlsx(
        path,
        {
            "Data": {
                1: ["fusebillId", "geotabId", "Notes"],
                2: [12717595, "0909909", "first"],
                3: [671201, "1234", "second"],
            },
            "Other": {1: ["fusebillId", "geotabId"], 2: [1, "x"]},
        },
    )
    return path.read_bytes()


class Helpers:
    """The helpers above, handed to tests by the ``helpers`` fixture; a test annotates it
    ``helpers: type[Helpers]`` (``from tests.conftest import Helpers``), so mypy checks
    every call."""

    Cell = Cell
    FORMULA_STARTS = FORMULA_STARTS
    SAMPLE_CSV = SAMPLE_CSV
    SAMPLE_XLSX = SAMPLE_XLSX
    write_csv = staticmethod(write_csv)
    write_xlsx = staticmethod(write_xlsx)
    read_csv_records = staticmethod(read_csv_records)
    run_cli = staticmethod(run_cli)
    run_cli_many = staticmethod(run_cli_many)
    assert_one_line_error = staticmethod(assert_one_line_error)
    assert_one_line = staticmethod(assert_one_line)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers
