"""Every option of every command of ``batch-latch`` has its own row in an options table of
README.md, and that row names the command (sqlite-utils keeps its docs honest the same way).
A flag that merely appears somewhere in the prose does not count."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from batch_latch.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
#: The sandbox's options table has no "commands" column: every row is the sandbox's.
SANDBOX_TABLE = "sandbox option"


def every_option() -> list[tuple[str, str]]:
    parser = build_parser(sandbox_options=True)
    found: list[tuple[str, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                for option in sub._actions:
                    for flag in option.option_strings:
                        if flag.startswith("--") and flag != "--help":
                            found.append((command, flag))
    return found


def option_rows() -> dict[str, list[set[str]]]:
    """flag -> for each table row whose first cell names it, the commands the row is for."""
    rows: dict[str, list[set[str]]] = {}
    header: list[str] = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = [c.lower() for c in cells]
            continue
        if set(cells[0]) <= {"-", ":"}:
            continue
        if header[0] == SANDBOX_TABLE:
            commands = {"sandbox"}
        elif len(header) > 1 and header[1] == "commands":
            commands = {c.strip() for c in cells[1].split(",")}
        else:
            continue
        for flag in re.findall(r"`(--[a-z0-9-]+)", cells[0]):
            rows.setdefault(flag, []).append(commands)
    return rows


def test_the_walk_finds_the_options() -> None:
    found = every_option()
    assert ("run", "--dry-run") in found and ("plan", "--rate") in found
    assert ("undo", "--unlatch-unknown") in found and ("status", "--json") in found
    assert any(command == "sandbox" for command, _ in found)


def test_the_table_reader_sees_the_rows() -> None:
    rows = option_rows()
    assert {"run", "undo"} <= set().union(*rows["--dry-run"])


@pytest.mark.parametrize(("command", "flag"), [o for o in every_option() if o[0] != "sandbox"])
def test_every_option_has_its_row_in_the_readme(command: str, flag: str) -> None:
    rows = option_rows().get(flag, [])
    assert any(command in commands for commands in rows), (
        f"{command} {flag} has no row of its own in README.md's options tables"
    )


@pytest.mark.parametrize("flag", sorted({f for c, f in every_option() if c == "sandbox"}))
def test_every_sandbox_option_is_in_the_readme(flag: str) -> None:
    text = README.read_text(encoding="utf-8")
    assert f"`{flag}" in text, f"sandbox {flag} is not in README.md"
