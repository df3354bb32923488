"""The emulator must not share code with the app it stands in for."""

from __future__ import annotations

import ast
from pathlib import Path

EMULATOR = Path(__file__).resolve().parents[2] / "local" / "emulator"


def test_emulator_never_imports_the_app_shared_package() -> None:
    imported: set[str] = set()
    for path in EMULATOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)

    assert imported
    assert not {name for name in imported if name == "shared" or name.startswith("shared.")}
