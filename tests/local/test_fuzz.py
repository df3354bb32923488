"""The fuzz targets of ``make fuzz`` (local/fuzz): their checks hold on their seeds and on known
hostile inputs, and the atheris harness runs each target (one second each: a smoke test)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from local.fuzz.__main__ import EXAMPLES
from local.fuzz.targets import JOB_ID, TARGETS, seeds
from shared.jobs import parse_answer

from .test_layout import REPO_ROOT

HOSTILE = [
    b"",
    b"\xff\xfe",
    b"[" * 100_000,
    b'{"jobId": "' + JOB_ID.encode() + b'", "status": "succeeded", "tasks": {"items": [{"results": null}]}}',
    b'{"status": "running", "x": NaN}',
    b'{"status": "running", "displayName": "\\ud83d"}',
    b'{"status": "1e999"}',
    b"1" * 5000,
]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_seed_and_known_hostile_input_keeps_the_invariant(target: str) -> None:
    for data in [*seeds(target, EXAMPLES), *HOSTILE]:
        TARGETS[target](data)


def test_the_answer_seeds_are_usable_pages_so_the_fuzzer_starts_deep_in_the_parser() -> None:
    pages = [parse_answer(seed, job_id=JOB_ID) for seed in seeds("answers", EXAMPLES)]

    assert all(page.items for page in pages)


def test_make_fuzz_runs_each_target_under_atheris() -> None:
    pytest.importorskip("atheris")
    process = subprocess.run(
        [sys.executable, "-m", "local.fuzz", "--seconds", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert process.returncode == 0, process.stdout + process.stderr
    for target in TARGETS:
        assert f"fuzz {target}: " in process.stdout
    assert process.stdout.count(", clean") == len(TARGETS)
