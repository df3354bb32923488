"""The virtual-time simulation of the request budget (a reduced ``make simulate-budget``): the real
budget and poll policy, many pending jobs, an upstream that bursts over the service's limit."""

from __future__ import annotations

import pytest

from local.bench.simulate_budget import SimPlan, SimReport, simulate

PLAN = SimPlan(
    jobs=1500,
    instances=3,
    budget=300,
    service_limit=500,
    upstream_per_minute=150,
    burst_per_minute=450,
    burst_from=300.0,
    burst_seconds=120.0,
    finish_within=1800.0,
)


@pytest.fixture(scope="module")
def report() -> SimReport:
    return simulate(PLAN)


def test_every_job_is_archived_and_none_times_out(report: SimReport) -> None:
    assert report.statuses == {"succeeded": PLAN.jobs}


def test_no_60_second_window_holds_more_than_the_budget_plus_ten_percent(report: SimReport) -> None:
    assert PLAN.budget < report.max_in_window <= 1.1 * PLAN.budget


def test_the_upstreams_burst_is_answered_with_few_429s(report: SimReport) -> None:
    assert 0 < report.throttled <= 0.01 * report.requests


def test_the_app_slows_down_while_the_upstream_bursts_and_climbs_back(report: SimReport) -> None:
    burst = report.per_minute[6:7]  # the burst runs from minute 5 to 7
    assert max(burst) < 0.5 * PLAN.budget
    assert max(report.per_minute[9:12]) >= 0.9 * PLAN.budget


def test_no_rescheduled_poll_comes_so_late_that_the_sweep_would_re_drive_it(report: SimReport) -> None:
    assert report.late
    assert report.redriven == 0


def test_the_simulation_is_reproducible() -> None:
    small = SimPlan(jobs=200, instances=2, budget=120, finish_within=600.0)
    assert simulate(small).summary() == simulate(small).summary()
