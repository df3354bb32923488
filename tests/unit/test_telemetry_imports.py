"""Telemetry one way: ``shared.otel`` depends on ``shared.telemetry``'s names, never the reverse,
and ``shared.telemetry`` imports no telemetry package (read from the source: no import runs)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

SHARED: Final = Path(__file__).resolve().parents[2] / "shared"
TELEMETRY_PACKAGES: Final = ("opentelemetry", "azure.monitor")


def imported(module: Path) -> set[str]:
    """Every module a module of ``shared`` imports, anywhere in it (relative imports resolved;
    ``from . import x`` counts as ``shared.x``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # shared is one flat package: a relative import names a sibling module (or shared).
            base = ".".join(part for part in ("shared" if node.level else "", node.module or "") if part)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def test_otel_depends_on_the_telemetry_names() -> None:
    assert "shared.telemetry" in imported(SHARED / "otel.py")


def test_telemetry_never_imports_otel() -> None:
    assert not [name for name in imported(SHARED / "telemetry.py") if within(name, "shared.otel")]


def test_telemetry_imports_no_telemetry_package() -> None:
    names = imported(SHARED / "telemetry.py")
    assert not [n for n in names if any(within(n, package) for package in TELEMETRY_PACKAGES)]


def test_a_lazy_import_inside_a_function_counts(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from . import otel\n    import opentelemetry.trace\n")

    assert {"shared.otel", "opentelemetry.trace"} <= imported(module)
