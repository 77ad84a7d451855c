"""The package's shape, checked as a contract beside import-linter's layers (pyproject's
``[tool.importlinter]``, run by ``lint-imports`` in CI): no module imports another module's
private name, and every HTTP session outside the sandbox is made in one place."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "batch_latch"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_imports_a_private_name_of_another() -> None:
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("batch_latch"):
                found += [
                    f"{path.relative_to(PACKAGE)}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert found == []


def test_requests_sessions_are_made_in_one_place_outside_the_sandbox() -> None:
    makers = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if "sandbox" not in path.parts and "requests.Session(" in path.read_text(encoding="utf-8")
    ]
    assert makers == ["fusebill/transport.py"]
