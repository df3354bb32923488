"""What `.funcignore` lets into the deployment package: the app and nothing dev-only."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def ignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """gitignore-style matching, enough for this file: names, globs, and directory patterns."""
    parts = path.split("/")
    for pattern in patterns:
        directory = pattern.endswith("/")
        name = pattern.rstrip("/")
        candidates = parts[:-1] if directory else parts
        if any(fnmatch.fnmatch(part, name) for part in candidates) or fnmatch.fnmatch(path, name):
            return True
    return False


def deployed_files() -> list[str]:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    patterns = ignore_patterns()
    return [path for path in tracked if not is_ignored(path, patterns)]


def test_package_holds_the_app_entry_points_and_its_requirements() -> None:
    files = deployed_files()

    assert {"function_app.py", "host.json", "requirements.txt"} <= set(files)
    assert any(path.startswith("shared/") for path in files)


def test_package_holds_nothing_dev_only() -> None:
    files = deployed_files()

    dev_only = ("local/", "cli/", "tests/", "infra/", "docs/", ".ci/", "node_modules/")
    assert [path for path in files if path.startswith(dev_only)] == []
    assert "requirements-dev.txt" not in files
    assert "requirements-cli.txt" not in files
    assert "package.json" not in files


def test_deployed_code_never_imports_dev_only_packages() -> None:
    for path in deployed_files():
        if not path.endswith(".py"):
            continue
        tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                assert name.split(".")[0] not in {"local", "tests", "cli", "tqdm"}, f"{path} imports {name}"


COMPILE_BYTECODE = "-m compileall -q --invalidation-mode checked-hash function_app.py shared"


def test_package_takes_the_apps_bytecode_and_no_dev_only_bytecode() -> None:
    patterns = ignore_patterns()

    assert not is_ignored("__pycache__/function_app.cpython-311.pyc", patterns)
    assert not is_ignored("shared/__pycache__/worker.cpython-311.pyc", patterns)
    assert is_ignored("tests/__pycache__/conftest.cpython-311.pyc", patterns)
    assert is_ignored("cli/__pycache__/main.cpython-311.pyc", patterns)


def test_azd_compiles_the_bytecode_before_packaging_as_make_does() -> None:
    azure_yaml = (REPO_ROOT / "azure.yaml").read_text(encoding="utf-8")
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")

    assert re.search(
        rf"prepackage:\n\s+shell: sh\n\s+run: python3 {re.escape(COMPILE_BYTECODE)}\n", azure_yaml
    )
    assert f"$(PY) {COMPILE_BYTECODE}\n" in makefile


def test_the_deploy_workflow_compiles_with_the_runtimes_python() -> None:
    workflow = (REPO_ROOT / ".github" / "workflows" / "azure-dev.yml").read_text(encoding="utf-8")
    setup, deploy = workflow.find("actions/setup-python@"), workflow.find("azd deploy")

    assert 0 <= setup < deploy
    assert 'python-version: "3.11"' in workflow[setup:deploy]
