"""The house rules of ``local/``: one purpose a folder, imports that run one way, small rooms.

Each folder's ``__init__`` docstring says who may import it; these tests hold the code to that.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = REPO_ROOT / "local"
#: What each room of ``local/`` may import from the others (beyond itself and ``local.upstream``).
ALLOWED: dict[str, set[str]] = {
    "host": set(),
    "emulator": set(),
    "bench": {"local.host", "local.emulator"},
    "proof": {"local.host", "local.emulator", "local.bench.latency"},
    "fuzz": set(),
}
MAX_LINES = 400


def _local_imports(path: Path) -> set[str]:
    """Every ``local...`` module ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name == "local" or name.startswith("local."))
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(f"{prefix}.")


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_a_room_imports_only_what_its_docstring_allows(room: str) -> None:
    allowed = {f"local.{room}", "local.upstream", *ALLOWED[room]}
    strays = {
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in (LOCAL / room).rglob("*.py")
        for module in _local_imports(path)
        if not any(_within(module, prefix) for prefix in allowed)
    }
    assert not strays, sorted(strays)


def test_every_room_says_what_lives_there_and_who_may_import_it() -> None:
    for room in ALLOWED:
        docstring = ast.get_docstring(ast.parse((LOCAL / room / "__init__.py").read_text("utf-8")))
        assert docstring, f"local/{room}/__init__.py has no docstring"
        assert "import" in docstring, f"local/{room}/__init__.py does not say who may import it"


def test_the_rooms_are_the_only_folders_of_local() -> None:
    folders = {path.name for path in LOCAL.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == {*ALLOWED, "samples"}


def test_no_module_under_local_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO_ROOT)): lines
        for path in LOCAL.rglob("*.py")
        if (lines := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


@pytest.mark.parametrize("package", ["shared", "cli"])
def test_the_app_and_the_command_line_never_import_local(package: str) -> None:
    strays = {
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in (REPO_ROOT / package).rglob("*.py")
        for module in _local_imports(path)
    }
    assert not strays, sorted(strays)


def test_the_function_app_never_imports_local() -> None:
    assert not _local_imports(REPO_ROOT / "function_app.py")
