"""The benchmark's own measuring instruments (``local.bench.instruments``)."""

from __future__ import annotations

import os
import sys
import time

import pytest

from local.bench.instruments import CpuClock, Side, ratio

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CpuClock reads Linux /proc")


def test_cpu_clock_reads_a_process_cpu_time_from_proc() -> None:
    clock = CpuClock({"me": os.getpid()})
    start = clock.read()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # bounded: 0.3 s of this process's CPU
        pass

    used = clock.since(start)

    # /proc counts in clock ticks (10 ms here); the benchmark process is counted apart as "bench".
    assert used["bench"] == pytest.approx(0.3, abs=0.05)
    assert used["me"] == pytest.approx(used["bench"], abs=0.05)


def test_cpu_clock_leaves_out_a_process_that_is_gone() -> None:
    clock = CpuClock({"gone": 2**22 + 1})  # above the kernel's pid limit: never a live process

    assert set(clock.read()) == {"bench"}


def test_a_ratio_is_the_median_of_the_rounds_own_ratios() -> None:
    app, floor = Side("app"), Side("floor")
    app.rates, floor.rates = [10.0, 40.0, 30.0], [20.0, 50.0, 100.0]  # a busy machine in round 3

    assert ratio(app, floor) == 0.5  # of 0.5, 0.8, 0.3; the medians' ratio would say 0.6
