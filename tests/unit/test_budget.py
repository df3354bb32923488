"""The pure request budget: token bucket, AIMD on 429, pending jobs, and the 60-s window bound."""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.budget import (
    MAX_PAUSE_SECONDS,
    BudgetLimits,
    BudgetState,
    advance,
    cycle_seconds,
    ready_at,
    take,
    throttle,
    with_lateness,
    with_pending,
)

LIMITS = BudgetLimits(per_minute=600)


def full(limits: BudgetLimits = LIMITS, now: float = 0.0) -> BudgetState:
    return BudgetState(tokens=limits.capacity, stamp=now)


def test_a_fresh_budget_starts_empty_and_refills_at_the_rate() -> None:
    state = BudgetState.initial(LIMITS, 100.0)
    assert take(LIMITS, state, 100.0, 5)[1] == 0
    assert advance(LIMITS, state, 101.0).tokens == pytest.approx(10.0)


def test_the_bucket_never_holds_more_than_its_capacity() -> None:
    assert advance(LIMITS, BudgetState.initial(LIMITS, 0.0), 3600.0).tokens == LIMITS.capacity


def test_a_take_grants_at_most_one_batch() -> None:
    _, granted = take(LIMITS, full(), 0.0, 1000)
    assert granted == LIMITS.batch == 12


def test_a_batch_is_at_least_ten_requests_from_480_a_minute() -> None:
    assert BudgetLimits(per_minute=480).batch >= 10


def test_ready_at_is_when_the_next_token_arrives() -> None:
    state = BudgetState(tokens=0.5, stamp=0.0)
    assert ready_at(LIMITS, state, 0.0) == pytest.approx(0.05)


def test_a_429_pauses_for_retry_after_and_halves_the_rate() -> None:
    state = throttle(LIMITS, full(), 10.0, 7.0)
    assert state.throttled_until == 17.0
    assert state.factor == 0.5
    assert take(LIMITS, state, 16.9, 1)[1] == 0
    assert ready_at(LIMITS, state, 12.0) == pytest.approx(17.0 + 1 / 5)


def test_a_429_inside_a_known_pause_only_lengthens_it() -> None:
    once = throttle(LIMITS, full(), 10.0, 5.0)
    twice = throttle(LIMITS, once, 11.0, 8.0)
    assert twice.factor == 0.5
    assert twice.throttled_until == 19.0


def test_a_retry_after_of_days_pauses_one_minute_at_most() -> None:
    assert throttle(LIMITS, full(), 0.0, 86400.0).throttled_until == MAX_PAUSE_SECONDS


def test_the_rate_climbs_back_to_the_budget_gradually() -> None:
    state = throttle(LIMITS, full(), 0.0, 1.0)
    halfway = advance(LIMITS, state, 1.0 + LIMITS.recover_seconds / 4)
    assert 0.5 < halfway.factor < 1.0
    assert advance(LIMITS, state, 1.0 + LIMITS.recover_seconds).factor == 1.0


def test_the_factor_never_drops_below_its_floor() -> None:
    state = full()
    for n in range(20):
        state = throttle(LIMITS, state, n * 2.0, 1.0)  # each pause over before the next
    assert state.factor == LIMITS.min_factor


def test_pending_jobs_move_by_deltas_and_the_sweep_sets_them_exactly() -> None:
    state = with_pending(full(), delta=3)
    assert with_pending(state, delta=-5).pending == 0
    assert with_pending(state, exact=10_000).pending == 10_000


def test_one_cycle_of_every_pending_job_takes_pending_over_rate() -> None:
    assert cycle_seconds(LIMITS, with_pending(full(), exact=10_000)) == pytest.approx(1000.0)


@pytest.mark.parametrize("per_minute", [0, -1])
def test_a_budget_below_one_a_minute_is_refused(per_minute: int) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        BudgetLimits(per_minute=per_minute)


def test_burst_and_hold_beyond_ten_percent_of_a_minute_are_refused() -> None:
    with pytest.raises(ValueError, match="10 %"):
        BudgetLimits(per_minute=600, burst_seconds=4, hold_seconds=3)


def test_the_window_bound_is_within_ten_percent_of_the_budget() -> None:
    for per_minute in (1, 60, 200, 300, 480, 600, 1000, 6000):
        limits = BudgetLimits(per_minute=per_minute)
        assert limits.window_bound() <= per_minute * 1.1 + 1e-9


@given(
    per_minute=st.integers(min_value=1, max_value=3000),
    events=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=2.0),  # gap since the previous event
            st.integers(min_value=0, max_value=3),  # which instance takes
            st.floats(min_value=0.0, max_value=1.0),  # when in its hold it spends (fraction)
            st.booleans(),  # a 429 instead of a take
        ),
        min_size=1,
        max_size=300,
    ),
)
def test_no_60_second_window_holds_more_than_the_budget_plus_ten_percent(
    per_minute: int, events: list[tuple[float, int, float, bool]]
) -> None:
    limits = BudgetLimits(per_minute=per_minute)
    state = BudgetState.initial(limits, 0.0)
    now = 0.0
    spends: list[float] = []
    for gap, _instance, when, throttled in events:
        now += gap
        if throttled:
            state = throttle(limits, state, now, 1.0)
            continue
        state, granted = take(limits, state, now, limits.batch)
        # Each token is spent at some moment before it expires, hold_seconds after its take.
        spends += [now + when * limits.hold_seconds] * granted
    spends.sort()
    for index, start in enumerate(spends):
        in_window = bisect.bisect_left(spends, start + 60.0) - index
        assert in_window <= per_minute * 1.1 + 1e-9


def test_lateness_keeps_the_largest_reported_and_fades_once_polls_are_on_time() -> None:
    state = with_lateness(with_lateness(full(), 300.0), 100.0)
    assert state.late == 300.0
    assert advance(LIMITS, state, 60.0).late == pytest.approx(300.0 / math.e)
    assert advance(LIMITS, state, 600.0).late < 1.0
