"""Every option of every command of ``batch-latch`` appears in README.md (sqlite-utils keeps
its docs honest the same way)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from batch_latch.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


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


def test_the_walk_finds_the_options() -> None:
    found = every_option()
    assert ("run", "--dry-run") in found and ("plan", "--rate") in found
    assert ("undo", "--unlatch-unknown") in found and ("status", "--json") in found
    assert any(command == "sandbox" for command, _ in found)


@pytest.mark.parametrize(("command", "flag"), every_option())
def test_every_option_is_in_the_readme(command: str, flag: str) -> None:
    text = README.read_text(encoding="utf-8")
    assert f"`{flag}" in text or f"{flag} " in text, f"{command} {flag} is not in README.md"
