"""Every vocabulary member has its words: a new status or stop reason without a label or
advice fails here, not in front of a user."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from batch_latch.vocab import (
    COMMAND_KINDS,
    ERROR_KEY_MEANINGS,
    SIGNAL_NAMES,
    SIGNAL_STOPS,
    STATUS_LABELS,
    STOP_ADVICE,
    Change,
    CommandKind,
    ErrorKey,
    RunKind,
    Status,
    StopReason,
    command_kind,
    command_words,
    http_key,
    is_error_key,
    is_http_key,
    run_kind,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_status_has_a_summary_label() -> None:
    assert set(STATUS_LABELS) == set(Status)
    assert STATUS_LABELS[Status.NOT_FOUND] == "not found (404)"


def test_every_stop_reason_has_advice() -> None:
    assert set(STOP_ADVICE) == set(StopReason)
    assert all(text and not text.endswith(".") for text in STOP_ADVICE.values())


def test_every_signal_stop_has_a_name_and_an_exit_code() -> None:
    assert set(SIGNAL_NAMES) == set(SIGNAL_STOPS)
    assert {SIGNAL_STOPS[r]: SIGNAL_NAMES[r] for r in SIGNAL_NAMES} == {
        130: "Ctrl-C",
        143: "SIGTERM",
        129: "SIGHUP",
    }


@pytest.mark.parametrize("member", [Status.NOT_FOUND, Change.RELATCH, RunKind.DRY_RUN])
def test_a_member_reads_as_its_value_everywhere(member: Status | Change | RunKind) -> None:
    assert str(member) == member.value
    assert f"{member}" == member.value and f"{member:>12}" == f"{member.value:>12}"
    assert json.dumps({"k": member}) == json.dumps({"k": member.value})


# --- error keys ------------------------------------------------------------------------------


def test_every_error_key_has_its_meaning() -> None:
    assert set(ERROR_KEY_MEANINGS) == set(ErrorKey)
    assert all(text and not text.endswith(".") for text in ERROR_KEY_MEANINGS.values())


def test_error_keys_and_stop_reasons_do_not_share_a_word() -> None:
    """A pending row's key is its stop reason: no other key may read the same."""
    assert not {k.value for k in ErrorKey} & {r.value for r in StopReason}


def test_the_http_family_is_made_and_recognised_in_one_place() -> None:
    assert http_key(422) == "http_422" and is_http_key(http_key(503))
    assert not any(is_http_key(k) for k in ("http_", "http_42", "http_4220", "HTTP_422", "x"))
    assert is_error_key(http_key(400)) and is_error_key(StopReason.API_DOWN)
    assert is_error_key(ErrorKey.NONE) and not is_error_key("checkpoint_error")


def _producer_literals(tree: ast.AST) -> list[ast.expr]:
    """String literals handed to a producer as the error key: ``error_key=``, the key of
    ``Verdict(kind, message, key)`` and ``RowOutcome(status, http, attempts, message, key)``."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        found += [k.value for k in node.keywords if k.arg == "error_key"]
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        at = {"Verdict": 2, "RowOutcome": 4}.get(name)
        if at is not None and len(node.args) > at:
            found.append(node.args[at])
    texts = (ast.Constant, ast.JoinedStr)
    return [
        e
        for e in found
        if isinstance(e, texts) and not (isinstance(e, ast.Constant) and e.value == "")
    ]


def test_producers_name_error_keys_by_the_enum() -> None:
    """No module spells an error key itself: a new key must be a member (and so have its
    meaning and its line in docs/reference.md); ``http_<status>`` comes from ``http_key``."""
    package = ROOT / "batch_latch"
    bad = []
    for path in sorted(package.rglob("*.py")):
        if "sandbox" in path.parts or path.name == "vocab.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += [f"{path.relative_to(ROOT)}:{e.lineno}" for e in _producer_literals(tree)]
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                if isinstance(first, ast.Constant) and str(first.value).startswith("http_"):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} (use vocab.http_key)")
    assert not bad, f"error keys spelt outside vocab.ErrorKey: {bad}"


def test_the_scan_sees_a_spelt_key() -> None:
    tree = ast.parse(
        'Verdict(m, "x", "made_up")\nRowOutcome(s, 1, 0, "m", f"http_{s}")\n'
        'f(error_key="y")\nVerdict(m, "x", ErrorKey.NONE)\nVerdict(m, "x", "")'
    )
    assert len(_producer_literals(tree)) == 3


# --- command kinds ---------------------------------------------------------------------------


def test_every_command_kind_has_its_words() -> None:
    assert set(COMMAND_KINDS) == set(CommandKind)
    assert {w.run_kind for w in COMMAND_KINDS.values()} == set(RunKind)


@pytest.mark.parametrize(
    ("kind", "dry_run", "ledger", "shown"),
    [
        (RunKind.RUN, False, "run", "run"),
        (RunKind.DRY_RUN, True, "dry_run", "dry-run"),
        (RunKind.DRY_RUN, False, "dry_run", "dry-run"),
        (RunKind.PLAN, False, "plan", "plan"),
        (RunKind.UNDO, False, "undo", "undo"),
        (RunKind.UNDO, True, "undo_dry_run", "undo --dry-run"),
    ],
)
def test_a_command_kind_round_trips(kind: RunKind, dry_run: bool, ledger: str, shown: str) -> None:
    made = command_kind(kind, dry_run)
    assert made == ledger
    words = command_words(ledger)
    assert words is not None and words.run_kind is kind and words.shown == shown
    assert command_words("teleport") is None


@pytest.mark.parametrize(
    ("command", "dry_run", "kind"),
    [
        ("run", False, RunKind.RUN),
        ("run", True, RunKind.DRY_RUN),
        ("plan", False, RunKind.PLAN),
        ("check", False, RunKind.PLAN),
        ("undo", True, RunKind.UNDO),
        ("status", False, RunKind.RUN),
    ],
)
def test_the_run_kind_of_a_cli_command(command: str, dry_run: bool, kind: RunKind) -> None:
    assert run_kind(command, dry_run) is kind


def test_an_older_summary_saying_checkpoint_error_reads_as_the_ledger_error() -> None:
    assert StopReason("checkpoint_error") is StopReason.LEDGER_ERROR
    assert str(StopReason.LEDGER_ERROR) == "ledger_error"
    with pytest.raises(ValueError):
        StopReason("no_such_reason")
