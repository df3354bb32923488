"""The pure request budget: token bucket, AIMD on 429, pending jobs, and the 60-s window bound."""

from __future__ import annotations

import bisect
import math
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.budget import (
    CLOCK_TOLERANCE_SECONDS,
    MAX_PAUSE_SECONDS,
    REFILL_BEFORE_EXPIRY_SECONDS,
    REFILL_MIN_SPENT,
    BudgetLimits,
    BudgetState,
    Pacing,
    advance,
    clock_correction,
    cycle_seconds,
    paced,
    ready_at,
    refill_due,
    state_from_json,
    state_to_json,
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


def test_the_first_429_of_a_squeeze_pauses_for_retry_after_and_no_more() -> None:
    state = throttle(LIMITS, full(), 10.0, 7.0)
    assert state.throttled_until == 17.0
    assert take(LIMITS, state, 16.9, 1)[1] == 0
    assert ready_at(LIMITS, state, 12.0) == pytest.approx(17.0 + 1 / LIMITS.rate)


def test_the_first_429_of_a_squeeze_leaves_the_rate_alone() -> None:
    # A sliding window admits, after Retry-After, what leaves it: the app's full rate a minute ago.
    state = throttle(LIMITS, full(), 10.0, 7.0)
    assert state.factor == 1.0
    assert advance(LIMITS, state, 18.0).tokens == pytest.approx(LIMITS.rate)


def test_a_429_soon_after_a_pause_ended_halves_the_rate() -> None:
    once = throttle(LIMITS, full(), 10.0, 5.0)
    again = throttle(LIMITS, once, 20.0, 5.0)
    assert again.factor == 0.5
    assert again.throttled_until == 25.0


def test_a_429_long_after_the_last_pause_is_a_new_squeeze() -> None:
    once = throttle(LIMITS, full(), 10.0, 5.0)
    later = throttle(LIMITS, once, 15.0 + LIMITS.probe_seconds + 1, 5.0)
    assert later.factor == 1.0


def test_a_429_inside_a_known_pause_only_lengthens_it() -> None:
    once = throttle(LIMITS, full(), 10.0, 5.0)
    twice = throttle(LIMITS, once, 11.0, 8.0)
    assert twice.factor == once.factor
    assert twice.throttled_until == 19.0


def test_a_retry_after_of_days_pauses_one_minute_at_most() -> None:
    assert throttle(LIMITS, full(), 0.0, 86400.0).throttled_until == MAX_PAUSE_SECONDS


def test_a_pause_counts_as_lateness_for_the_sweep() -> None:
    assert throttle(LIMITS, full(), 0.0, 20.0).late == 20.0


def test_a_pause_adds_to_the_lateness_polls_had_already() -> None:
    state = with_lateness(full(), 5.0)
    assert throttle(LIMITS, state, 0.0, 20.0).late == pytest.approx(25.0)


def test_a_longer_retry_after_inside_a_pause_adds_only_the_extension() -> None:
    once = throttle(LIMITS, full(), 0.0, 20.0)
    assert throttle(LIMITS, once, 5.0, 10.0).late == pytest.approx(20.0)
    assert throttle(LIMITS, once, 5.0, 25.0).late == pytest.approx(30.0)


def test_lateness_does_not_fade_during_a_pause() -> None:
    state = throttle(LIMITS, full(), 0.0, 20.0)
    assert advance(LIMITS, state, 19.0).late == pytest.approx(20.0)
    assert advance(LIMITS, state, 80.0).late == pytest.approx(20.0 / math.e)


def test_the_rate_climbs_back_to_the_budget_within_recover_seconds() -> None:
    state = throttle(LIMITS, throttle(LIMITS, full(), 0.0, 1.0), 2.0, 1.0)
    assert state.factor == 0.5
    halfway = advance(LIMITS, state, 3.0 + LIMITS.recover_seconds / 4)
    assert 0.5 < halfway.factor < 1.0
    assert advance(LIMITS, state, 3.0 + LIMITS.recover_seconds).factor == 1.0
    assert LIMITS.recover_seconds <= 30.0  # not a minute: that wastes what the service gives back


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


def test_the_window_bound_is_within_ten_percent_of_the_budget_or_one_request() -> None:
    for per_minute in (1, 2, 5, 10, 23, 24, 60, 200, 300, 480, 600, 1000, 6000, 100_000):
        limits = BudgetLimits(per_minute=per_minute)
        whole = math.floor(limits.window_bound() + 1e-9)  # requests are whole
        assert whole <= max(math.floor(per_minute * 1.1), per_minute + 1)


@pytest.mark.parametrize("per_minute", [1, 5, 23])
def test_a_small_budget_still_grants_whole_tokens(per_minute: int) -> None:
    limits = BudgetLimits(per_minute=per_minute)
    state, granted = take(limits, BudgetState.initial(limits, 0.0), 60.0, 1)
    assert granted == 1
    assert take(limits, state, 60.0, 1)[1] == 0


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


def test_a_state_survives_its_own_json() -> None:
    state = BudgetState(tokens=3.5, stamp=100.0, factor=0.5, throttled_until=90.0, pending=7.0, late=2.0)
    assert state_from_json(LIMITS, state_to_json(state), 100.0) == state


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"stamp": 1}',
        b'{"tokens": NaN, "stamp": 1}',
        b'{"tokens": Infinity, "stamp": 1}',
        b'{"tokens": 1, "stamp": -Infinity}',
        b'{"tokens": -1, "stamp": 1}',
        b'{"tokens": "1", "stamp": 1}',
        b'{"tokens": true, "stamp": 1}',
        b'{"tokens": null, "stamp": 1}',
        b'{"tokens": 1, "stamp": 1, "factor": 0}',
        b'{"tokens": 1, "stamp": 1, "factor": 2}',
        b'{"tokens": 1, "stamp": 1, "pending": 1e300}',
        b'{"tokens": 1, "stamp": 1, "late": [1]}',
        b"\xff\xfe",
    ],
)
def test_a_blob_that_holds_nonsense_is_unusable(data: bytes) -> None:
    with pytest.raises(ValueError):
        state_from_json(LIMITS, data, 10.0)


def test_unknown_keys_in_the_blob_are_ignored_and_tokens_cut_to_the_capacity() -> None:
    state = state_from_json(LIMITS, b'{"tokens": 1e6, "stamp": 5, "newer": "x"}', 10.0)
    assert state.tokens == LIMITS.capacity


def test_times_ahead_of_the_reader_are_pulled_back() -> None:
    state = state_from_json(LIMITS, b'{"tokens": 0, "stamp": 5000, "throttled_until": 9000}', 1000.0)
    assert state.stamp == 1000.0 + CLOCK_TOLERANCE_SECONDS
    assert state.throttled_until <= 1000.0 + MAX_PAUSE_SECONDS + CLOCK_TOLERANCE_SECONDS


def test_a_stamp_from_a_clock_running_ahead_does_not_starve_a_reader() -> None:
    state = state_from_json(LIMITS, b'{"tokens": 0, "stamp": 5000}', 1000.0)
    # The reader refills again within seconds, not after the writer's clock error (4,000 s).
    assert take(LIMITS, state, 1010.0, 1)[1] >= 1


def test_a_clock_that_agrees_with_the_service_is_left_alone() -> None:
    assert clock_correction(0.0, sent=100.0, received=100.2, server=100.0) == 0.0


@pytest.mark.parametrize("skew", [-3600.0, -45.0, 45.0, 3600.0])
def test_a_clock_off_the_service_is_brought_within_the_tolerance(skew: float) -> None:
    # The local clock reads server + skew; the write happened at server time 1000.4.
    offset = clock_correction(0.0, sent=1000.3 + skew, received=1000.5 + skew, server=1000.0)
    corrected = 1000.5 + skew + offset
    assert abs(corrected - 1000.5) <= CLOCK_TOLERANCE_SECONDS + 1.0


@given(
    skew=st.floats(min_value=-1e6, max_value=1e6),
    rtt=st.floats(min_value=0.0, max_value=5.0),
    at=st.floats(min_value=0.0, max_value=0.999),
)
def test_no_corrected_clock_runs_ahead_of_the_service_by_more_than_the_tolerance(
    skew: float, rtt: float, at: float
) -> None:
    server = 1_800_000_000.0  # whole seconds, as Last-Modified has them
    offset = clock_correction(
        0.0, sent=server + at - rtt / 2 + skew, received=server + at + rtt / 2 + skew, server=server
    )
    corrected = server + at + rtt / 2 + skew + offset
    assert corrected - (server + at + rtt / 2) <= CLOCK_TOLERANCE_SECONDS + 1.0 + rtt + 1e-6


@pytest.mark.parametrize("per_minute", [60, 100_000])
def test_a_batch_is_one_pacing_whatever_its_size(per_minute: int) -> None:
    limits = BudgetLimits(per_minute=per_minute)
    state, granted = take(limits, full(limits), 0.0, limits.batch)
    pacing = paced(limits, state, 0.0, granted)
    assert pacing.tokens == granted == limits.batch
    assert pacing.usable_from(granted - 1) < pacing.expires


def test_memory_per_take_does_not_grow_with_the_budget() -> None:
    def peak(per_minute: int) -> int:
        limits = BudgetLimits(per_minute=per_minute)
        state = full(limits)
        tracemalloc.start()
        try:
            for n in range(10):
                state, granted = take(limits, state, float(n), limits.batch)
                paced(limits, state, float(n), granted)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(100_000) <= peak(60) + 1024


# -- taking the next batch ahead of need ------------------------------------------------------------

FAST = BudgetLimits(per_minute=60_000)  # 1,000 a second, batches of 1,250


def held_batch(limits: BudgetLimits, now: float = 0.0) -> Pacing:
    return paced(limits, full(limits, now), now, limits.batch)


def test_a_half_spent_batch_is_followed_by_the_next_while_the_bucket_has_as_many() -> None:
    held = held_batch(LIMITS)
    half = held.tokens // 2

    assert not refill_due(LIMITS, full(LIMITS), held, half - 1, 0.1)
    assert refill_due(LIMITS, full(LIMITS), held, half, 0.1)


def test_a_batch_in_use_is_followed_by_the_next_shortly_before_it_expires() -> None:
    held = held_batch(FAST)
    near_expiry = held.expires - REFILL_BEFORE_EXPIRY_SECONDS

    assert not refill_due(FAST, full(FAST), held, REFILL_MIN_SPENT, near_expiry - 0.01)
    assert refill_due(FAST, full(FAST), held, REFILL_MIN_SPENT, near_expiry)


def test_an_instance_that_sends_little_takes_at_need_only() -> None:
    held = held_batch(FAST)

    assert not refill_due(FAST, full(FAST), held, REFILL_MIN_SPENT - 1, held.expires - 0.1)


def test_near_the_limit_no_batch_is_taken_ahead() -> None:
    # The bucket as last seen holds less than the held batch: a take ahead would get a few tokens
    # for a whole storage transaction; the take at need waits for a batch instead.
    held = held_batch(LIMITS)
    low = BudgetState(tokens=held.tokens - 1.5, stamp=0.0)

    assert not refill_due(LIMITS, low, held, held.tokens - 1, 0.0)


def test_no_batch_is_taken_ahead_during_a_pause_or_for_a_batch_spent_or_expired() -> None:
    held = held_batch(LIMITS)
    paused = BudgetState(tokens=LIMITS.capacity, stamp=0.0, throttled_until=5.0)

    assert not refill_due(LIMITS, paused, held, held.tokens - 1, 0.5)
    assert not refill_due(LIMITS, full(LIMITS), held, held.tokens, 0.5)
    assert not refill_due(LIMITS, full(LIMITS), held, held.tokens - 1, held.expires)


@given(
    per_minute=st.integers(min_value=1, max_value=100_000),
    taken_at=st.floats(min_value=0.0, max_value=1.0),
    factor=st.floats(min_value=0.1, max_value=1.0),
)
def test_a_batch_taken_ahead_follows_the_held_one_and_is_spent_before_it_expires(
    per_minute: int, taken_at: float, factor: float
) -> None:
    limits = BudgetLimits(per_minute=per_minute)
    state = BudgetState(tokens=limits.capacity, stamp=0.0, factor=factor)
    held = paced(limits, state, 0.0, limits.batch)
    now = taken_at * held.expires * 0.99

    ahead = paced(limits, state, now, limits.batch, after=held.end)

    assert ahead.start >= min(held.end, ahead.expires)
    assert ahead.start >= now
    assert ahead.expires == now + limits.hold_seconds
    assert ahead.usable_from(ahead.tokens - 1) < ahead.expires
