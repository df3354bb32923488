"""One fuzz target under atheris: ``python -m local.fuzz.run TARGET [libFuzzer options] [CORPUS…]``.

The app's modules are imported under atheris's instrumentation, so libFuzzer is guided by their
coverage. libFuzzer prints its statistics and exits the process when its time is up (exit 0) or on
the first failure (an uncaught exception, with the input saved as ``crash-…``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["shared"]):
    from local.fuzz.targets import TARGETS


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: python -m local.fuzz.run {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
