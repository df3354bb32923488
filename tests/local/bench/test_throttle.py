"""A reduced ``make bench-throttle``: worker processes under the local runner share one request
budget against the emulator's rate limit, squeezed for a while; the thresholds of the full run."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.bench.throttle import ThrottlePlan, ThrottleReport, percentile, run_bench_throttle

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

# 60 jobs at 240 a minute: the first polls alone take 15 s; the squeeze to 60 a minute lands while
# the app runs at its budget, so the service refuses and the app must slow down.
PLAN = ThrottlePlan(
    jobs=60,
    workers=2,
    budget=240,
    service_limit=300,
    squeeze_limit=60,
    squeeze_after=12.0,
    squeeze_seconds=15.0,
    running_seconds=(0.0, 5.0, 10.0, 20.0),
    timeout=240.0,
    max_throttled_share=0.08,  # a few 429s are a large share of ~100 requests
    max_lag_intervals=5.0,  # 75 s: the fair-share interval of 60 jobs at 240 a minute is 15 s
)


async def test_workers_share_one_budget_slow_down_on_429_and_archive_every_job(tmp_path: Path) -> None:
    report = await run_bench_throttle(PLAN, workdir=tmp_path)

    print(report.summary())
    assert report.statuses == {"succeeded": PLAN.jobs}
    assert report.max_in_window <= 1.1 * PLAN.budget
    assert report.throttled >= 1, "the squeeze never refused a request: the 429 path went unexercised"
    assert report.throttled_share <= PLAN.max_throttled_share
    assert report.failures() == []


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 95) == 95.0


def test_climb_back_counts_the_requests_after_the_first_429() -> None:
    report = ThrottleReport(plan=PLAN)
    report.totals = [(0.0, 0, 0), (10.0, 50, 0), (11.0, 51, 1), (30.0, 51, 1), (36.0, 90, 1), (61.0, 200, 1)]

    assert report.climb_back() == (11.0, 39, 110)


def test_no_429_means_no_climb_back() -> None:
    assert ThrottleReport(plan=PLAN, totals=[(0.0, 5, 0)]).climb_back() is None
