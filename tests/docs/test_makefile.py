"""The Makefile builds with Python 3.11 only, says how to choose another interpreter, and rebuilds a
virtual environment that was built with a different one. Dry runs (``make -n``) on throwaway
environments in tmp_path: the checkout's own environments are never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.drift import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _venv(path: Path, *, version: str, executable: str) -> Path:
    """A virtual environment as the Makefile sees one: its pyvenv.cfg and an up-to-date stamp."""
    path.mkdir()
    (path / "pyvenv.cfg").write_text(
        f"home = {Path(executable).parent}\ninclude-system-site-packages = false\n"
        f"version = {version}\nexecutable = {executable}\n",
        encoding="utf-8",
    )
    (path / ".installed").touch()
    return path


def _fake_python(tmp_path: Path, version: str) -> Path:
    """An interpreter that reports ``version`` the way the Makefile asks."""
    script = tmp_path / f"python{version}"
    script.write_text(f'#!/bin/sh\necho "{version} {script}"\n', encoding="utf-8")
    script.chmod(0o755)
    return script


def test_an_environment_built_with_this_interpreter_is_kept(tmp_path: Path) -> None:
    executable = os.path.realpath(sys._base_executable)  # type: ignore[attr-defined]
    venv = _venv(tmp_path / "venv", version=THIS_PYTHON, executable=executable)
    run = _make("-n", f"PYTHON={sys.executable}", f"VENV={venv}", f"{venv}/.installed")
    assert run.returncode == 0, run.stderr
    assert "-m venv" not in run.stdout


def test_an_environment_built_with_another_interpreter_is_rebuilt(tmp_path: Path) -> None:
    venv = _venv(tmp_path / "venv", version="3.11.2", executable="/opt/elsewhere/bin/python3.11")
    run = _make("-n", f"PYTHON={sys.executable}", f"VENV={venv}", f"{venv}/.installed")
    assert run.returncode == 0, run.stderr
    assert f"-m venv --clear {venv}" in run.stdout


def test_another_python_version_is_refused_in_one_line(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, "3.12.1")
    venv = tmp_path / "venv"
    run = _make(f"PYTHON={python}", f"VENV={venv}", f"{venv}/.installed")
    assert run.returncode != 0
    assert f"error: '{python}' is Python 3.12.1; this project builds and deploys with 3.11" in run.stderr
    assert "make PYTHON=/path/to/python3.11" in run.stderr
    assert not venv.exists()


def test_an_interpreter_that_does_not_run_is_refused(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run = _make(f"PYTHON={tmp_path / 'nonesuch'}", f"VENV={venv}", f"{venv}/.installed")
    assert run.returncode != 0
    assert "does not run: install Python 3.11, or name it: make PYTHON=/path/to/python3.11" in run.stderr
    assert not venv.exists()
