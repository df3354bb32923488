"""``python -m local.fuzz [--seconds N] [--target answers|messages]``: each target under atheris for
N seconds (default ``FUZZ_SECONDS`` or 60), from a seed corpus in a temporary folder; prints how
many inputs ran, how long, and whether the invariant held. Exit 1 on the first failure (libFuzzer
leaves the input as ``crash-…`` in the working folder)."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local.fuzz.targets import TARGETS, seeds

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "language-api" / "examples"
#: libFuzzer's last statistics line: "Done 123456 runs in 60 second(s)".
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
#: An input larger than this is not worth the time: every bound of the parsers is far below it
#: in nesting (which needs few bytes), and size bounds are tested apart.
_MAX_LEN = 65_536


def fuzz(target: str, seconds: int) -> tuple[bool, int, float]:
    """(clean, executions, seconds taken) of one target."""
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as corpus:
        for number, seed in enumerate(seeds(target, EXAMPLES)):
            Path(corpus, f"seed-{number}").write_bytes(seed)
        started = time.monotonic()
        process = subprocess.run(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "local.fuzz.run",
                target,
                f"-max_total_time={seconds}",
                f"-max_len={_MAX_LEN}",
                "-timeout=20",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
                corpus,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.monotonic() - started
    done = _DONE.search(process.stderr)
    if process.returncode != 0:
        sys.stderr.write(process.stderr[-5000:])
    return process.returncode == 0, int(done.group(1)) if done else 0, took


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local.fuzz", description=__doc__)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    parser.add_argument("--target", choices=sorted(TARGETS), action="append")
    arguments = parser.parse_args()
    if arguments.seconds < 1:
        parser.error("--seconds must be at least 1")
    failed = False
    for target in arguments.target or sorted(TARGETS):
        clean, runs, took = fuzz(target, arguments.seconds)
        verdict = "clean" if clean else "FAILED"
        print(f"fuzz {target}: {runs} executions in {took:.0f} s, {verdict}", flush=True)
        failed |= not clean
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
