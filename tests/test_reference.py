"""The documentation cannot drift from the code.

- ``docs/reference.md`` is exactly what ``scripts/make_reference.py`` writes from the parser
  and ``vocab`` (pip-audit's ``check-readme``, sqlite-utils' cog): change an option, a help
  text, a default or a word, and this fails until the script is run again;
- the README's quickstart runs the commands ``.ci/run`` and the demo use;
- the README stays an ops guide (short, with contents), and the docs' links lead somewhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from batch_latch.cli import build_parser
from batch_latch.commands import demo

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"
CI = ROOT / ".ci" / "run"


def generator() -> ModuleType:
    """``scripts/make_reference.py``, loaded as a module (scripts/ is not a package)."""
    path = ROOT / "scripts" / "make_reference.py"
    spec = importlib.util.spec_from_file_location("make_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered() -> str:
    text: str = generator().render()
    return text


def test_the_reference_is_what_the_script_writes(rendered: str) -> None:
    assert REFERENCE.read_text(encoding="utf-8") == rendered, (
        "docs/reference.md is stale: run `python scripts/make_reference.py` and commit it"
    )


def test_check_mode_fails_on_a_stale_file_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    make = generator()
    target = tmp_path / "reference.md"
    target.write_text("# stale\n", encoding="utf-8")
    assert make.main(["--check", "--target", str(target)]) == 1
    assert make.main(["--target", str(target)]) == 0
    assert make.main(["--check", "--target", str(target)]) == 0


def every_option() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for action in build_parser(sandbox_options=True)._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                for option in sub._actions:
                    found += [
                        (command, f) for f in option.option_strings if f not in ("-h", "--help")
                    ]
    return found


def test_the_walk_finds_options_of_every_command() -> None:
    found = every_option()
    assert ("run", "--dry-run") in found and ("plan", "--rate") in found
    assert ("undo", "--unlatch-unknown") in found and ("status", "--customer") in found
    assert ("check", "--read-batch") in found and ("sandbox", "--preset") in found


@pytest.mark.parametrize(("command", "flag"), every_option())
def test_every_option_has_its_row_under_its_command(rendered: str, command: str, flag: str) -> None:
    section = rendered.split(f"### `batch-latch {command}`", 1)[1].split("\n### ", 1)[0]
    assert re.search(rf"^\| `{re.escape(flag)}`", section, re.M), (
        f"{command} {flag} has no row under its command in the reference"
    )


def test_every_word_of_vocab_is_in_the_reference(rendered: str) -> None:
    from batch_latch import vocab

    for words in (vocab.Status, vocab.StopReason, vocab.RunKind):
        for word in words:
            assert f"| `{word.value}` |" in rendered, word
    for code in vocab.ExitCode:
        assert f"| `{code.value}` | {code.name} |" in rendered, code


# ---- the README ---------------------------------------------------------------------------


def quickstart() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quickstart", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```(?:sh|console|bash)?\n(.*?)```", section, re.S))


def ci_test_command() -> str:
    """The command after ``.ci/run``'s "the README's test command" line."""
    lines = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()]
    at = next(n for n, line in enumerate(lines) if "the README's test command" in line)
    return next(line for line in lines[at + 1 :] if line and not line.startswith("#"))


def test_the_quickstart_runs_the_test_command_ci_runs() -> None:
    command = ci_test_command()
    assert command == "python -m pytest"
    assert re.search(rf"(^|&& ){re.escape(command)}\s*$", quickstart(), re.M), (
        f"the README's quickstart does not run {command!r}, the command .ci/run runs"
    )
    assert "-e '.[test]'" in CI.read_text(encoding="utf-8")
    assert "-e '.[test]'" in quickstart()


def demo_default_out() -> str:
    for action in build_parser(sandbox_options=False)._actions:
        if isinstance(action, argparse._SubParsersAction):
            for option in action.choices["demo"]._actions:
                if "--out" in option.option_strings:
                    return str(option.default)
    raise AssertionError("demo has no --out")


def test_the_quickstart_installs_and_runs_the_demo() -> None:
    block = quickstart()
    assert re.search(r"pip install \.( |$|\n)", block), "pip install . (a plain install)"
    assert re.search(r"batch-latch demo\s*$", block, re.M)
    demo_out = demo_default_out()
    text = README.read_text(encoding="utf-8")
    assert f"{demo_out}/" in text, "the README names where the demo's reports are"
    assert demo.SAMPLE in text, "the README names the sample the demo runs"


def test_the_readme_is_an_ops_guide() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 350, f"README.md has {len(lines)} lines (at most 350)"
    assert "## Contents" in lines
    long = [n for n, line in enumerate(lines, 1) if len(line) > 200]
    assert not long, f"README.md lines over 200 characters: {long}"


@pytest.mark.parametrize(
    "page", [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
)
def test_relative_links_lead_to_files(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, not found"


def test_every_error_key_has_its_line_in_the_reference(rendered: str) -> None:
    from batch_latch import vocab

    section = rendered.split("\n## Error keys", 1)[1]
    for key in vocab.ErrorKey:
        shown = f"`{key.value}`" if key.value else "(empty)"
        assert f"| {shown} | {vocab.ERROR_KEY_MEANINGS[key]} |" in section, key
    assert f"| `http_<status>` | {vocab.HTTP_KEY_MEANING} |" in section


def test_job_folder_md_points_to_the_reference_for_error_keys() -> None:
    """One owner: job-folder.md keeps no list of keys of its own."""
    text = (ROOT / "docs" / "job-folder.md").read_text(encoding="utf-8")
    section = text.split("\n## Error keys", 1)[1].split("\n## ", 1)[0]
    assert "reference.md#error-keys-column-error_key" in section
    assert "| key |" not in section and "`relatch_refused`" not in section
