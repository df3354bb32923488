"""``make demo`` end to end: every job archived, its counts said once, the events and the operator's
commands (``announce`` included) shown, everything it started stopped."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.docs.drift import REPO_ROOT

pytestmark = pytest.mark.integration


def test_the_demo_archives_announces_and_says_each_count_once() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "local.demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    lines = run.stdout.splitlines()
    submitted = [line for line in lines if line.startswith("Submitted job ")]
    assert len(submitted) == 4
    for line in submitted:
        assert len(re.findall(r"\bdocuments\b", line)) == 1, line
    headers = [i for i, line in enumerate(lines) if re.match(r"^  [0-9a-f-]{36}  status=", line)]
    assert len(headers) == 4
    for start in headers:
        summary = lines[start + 1]
        assert "documents" not in summary, f"documents are counted per task, not again per job: {summary}"
    assert "Archive events on 'archive-events' (4;" in run.stdout
    assert "$ python -m cli announce --json" in run.stdout
    assert '"action": "announced"' in run.stdout
    assert "Stopped Azurite and the emulator." in run.stdout
