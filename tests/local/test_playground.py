"""``make up``: the playground serves until SIGINT, the submit helper and ``python -m cli`` work with the
env file it prints, and SIGINT stops every process it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.envfile import read_env_file
from local.playground import READY, env_file_text
from tests.docs.drift import REPO_ROOT

pytestmark = pytest.mark.integration

STARTUP_SECONDS = 60.0
ARCHIVE_SECONDS = 60.0
STOP_SECONDS = 30.0


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc), whatever its process group."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # gone meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.playground", "--dir", str(tmp_path), "--timeout", "300"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        seen = []
        for line in process.stdout:  # ends when the process does
            seen.append(line)
            if line.startswith(READY):
                break
            assert time.monotonic() < deadline, "".join(seen)
        assert process.poll() is None, "".join(seen)
        yield process, tmp_path / "env"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


def test_submit_archive_and_stop_on_sigint(playground: tuple[subprocess.Popen[str], Path]) -> None:
    process, env_file = playground
    assert env_file.stat().st_mode & 0o077 == 0, "the env file holds the emulator's key: owner only"

    submitted = _run("-m", "local.upstream", "--env-file", str(env_file), "--jobs", "2")
    assert submitted.returncode == 0, submitted.stderr
    job_ids = submitted.stdout.split()
    assert len(job_ids) == 2

    deadline = time.monotonic() + ARCHIVE_SECONDS
    while True:
        status = _run("-m", "cli", "status", "--json", "--env-file", str(env_file), *job_ids)
        states = [json.loads(line)["state"] for line in status.stdout.splitlines()]
        if states == ["archived", "archived"]:
            break
        assert time.monotonic() < deadline, f"not archived in {ARCHIVE_SECONDS:g} s: {status.stdout}"
        time.sleep(1.0)
    verified = _run("-m", "cli", "verify", "--all", "--env-file", str(env_file))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    started = _descendants(process.pid)
    assert started, "Azurite runs as a child of the playground"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=STOP_SECONDS)
    assert process.returncode == 0, output
    assert "playground: stopped" in output
    deadline = time.monotonic() + 5.0
    while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in started if _alive(pid)], "every process the playground started is gone"


def test_the_env_file_reads_back_as_the_settings(tmp_path: Path) -> None:
    settings = {"AzureWebJobsStorage": 'a="b";c=\\d', "JOBS_QUEUE": "language-jobs"}
    path = tmp_path / "env"
    path.write_text(env_file_text(settings), encoding="utf-8")
    assert read_env_file(path) == settings
