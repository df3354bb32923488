"""The poll policy: pure decisions, tested with a fixed clock and a scripted random source."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.policy import (
    MAX_VISIBILITY_SECONDS,
    MESSAGE_TIME_TO_LIVE,
    GiveUp,
    PollAgain,
    PollPolicy,
    WaitReason,
    next_poll,
    parse_http_date,
    parse_retry_after,
    queue_visibility,
)
from shared.settings import load_settings

NOW = datetime(2024, 11, 1, 12, 0, 0, tzinfo=UTC)
POLICY = PollPolicy(initial_delay=5.0, max_delay=300.0)
ALMOST_ONE = math.nextafter(1.0, 0.0)


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


def poll(
    *,
    reason: WaitReason = WaitReason.UNFINISHED,
    attempt: int = 0,
    retry_after: float | None = None,
    deadline: datetime | None = None,
    rand: float = 0.5,
    policy: PollPolicy = POLICY,
) -> PollAgain | GiveUp:
    return next_poll(
        policy,
        reason=reason,
        attempt=attempt,
        retry_after=retry_after,
        now=NOW,
        deadline=deadline,
        rand=fixed(rand),
    )


def delay_of(decision: PollAgain | GiveUp) -> float:
    assert isinstance(decision, PollAgain), decision
    return decision.delay


# --- backoff -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rand", [0.0, 0.5, ALMOST_ONE])
def test_first_reschedule_waits_exactly_the_initial_delay(rand: float) -> None:
    assert delay_of(poll(attempt=0, rand=rand)) == 5.0


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0)])
def test_ceiling_doubles_with_each_attempt(attempt: int, ceiling: float) -> None:
    assert delay_of(poll(attempt=attempt, rand=ALMOST_ONE)) == pytest.approx(ceiling)


def test_jitter_at_zero_is_the_initial_delay_never_less() -> None:
    assert delay_of(poll(attempt=4, rand=0.0)) == 5.0


def test_jitter_spans_the_whole_range_up_to_the_ceiling() -> None:
    delays = [delay_of(poll(attempt=3, rand=r)) for r in (0.0, 0.25, 0.5, 0.75, ALMOST_ONE)]
    assert delays == sorted(delays)
    assert delays[0] == 5.0
    assert delays[2] == pytest.approx(5.0 + 0.5 * (40.0 - 5.0))
    assert delays[-1] == pytest.approx(40.0)
    assert all(5.0 <= d < 40.0 for d in delays)


@pytest.mark.parametrize("attempt", [6, 7, 20, 60])
def test_delay_is_capped_at_max_delay(attempt: int) -> None:
    assert delay_of(poll(attempt=attempt, rand=ALMOST_ONE)) == pytest.approx(300.0)


@pytest.mark.parametrize("attempt", [1023, 1024, 10**6, 10**100])
def test_huge_attempt_does_not_overflow(attempt: int) -> None:
    assert delay_of(poll(attempt=attempt, rand=ALMOST_ONE)) == pytest.approx(300.0)
    assert delay_of(poll(attempt=attempt, rand=0.0)) == 5.0


def test_negative_attempt_counts_as_the_first() -> None:
    assert delay_of(poll(attempt=-3, rand=ALMOST_ONE)) == 5.0


def test_transient_faults_back_off_like_unfinished_jobs() -> None:
    assert delay_of(poll(reason=WaitReason.TRANSIENT, attempt=3, rand=0.5)) == delay_of(
        poll(reason=WaitReason.UNFINISHED, attempt=3, rand=0.5)
    )


@pytest.mark.parametrize("rand", [-0.1, 1.0, math.nan])
def test_rand_outside_unit_interval_is_rejected(rand: float) -> None:
    with pytest.raises(ValueError, match=r"rand\(\)"):
        poll(attempt=2, rand=rand)


def test_rand_is_called_once_per_decision() -> None:
    calls: list[None] = []

    def rand() -> float:
        calls.append(None)
        return 0.5

    next_poll(
        POLICY, reason=WaitReason.UNFINISHED, attempt=3, retry_after=None, now=NOW, deadline=None, rand=rand
    )
    assert len(calls) == 1


# --- Retry-After ---------------------------------------------------------------------------------


def test_retry_after_is_a_floor_over_the_backoff() -> None:
    assert delay_of(poll(attempt=0, retry_after=42.0)) == 42.0


def test_retry_after_shorter_than_the_backoff_changes_nothing() -> None:
    assert delay_of(poll(attempt=3, rand=ALMOST_ONE, retry_after=1.0)) == pytest.approx(40.0)


def test_retry_after_of_days_is_capped_at_max_delay() -> None:
    fifteen_days = 15 * 24 * 3600.0
    assert delay_of(poll(reason=WaitReason.TRANSIENT, retry_after=fifteen_days)) == 300.0


def test_infinite_retry_after_is_capped_at_max_delay() -> None:
    assert delay_of(poll(retry_after=math.inf)) == 300.0


@pytest.mark.parametrize("retry_after", [-1.0, math.nan])
def test_negative_or_nan_retry_after_is_ignored(retry_after: float) -> None:
    assert delay_of(poll(attempt=0, retry_after=retry_after)) == 5.0


# --- reasons -------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 50])
def test_config_fault_waits_the_cap(attempt: int) -> None:
    assert delay_of(poll(reason=WaitReason.CONFIG_FAULT, attempt=attempt, rand=0.0)) == 300.0


@pytest.mark.parametrize("attempt", [0, 3, 50])
def test_not_found_grace_waits_the_initial_delay(attempt: int) -> None:
    assert delay_of(poll(reason=WaitReason.NOT_FOUND_GRACE, attempt=attempt, rand=ALMOST_ONE)) == 5.0


def test_not_found_grace_still_honours_retry_after() -> None:
    assert delay_of(poll(reason=WaitReason.NOT_FOUND_GRACE, retry_after=9.0)) == 9.0


# --- deadline ------------------------------------------------------------------------------------


def test_not_before_is_now_plus_delay() -> None:
    decision = poll(attempt=2, rand=0.5)
    assert isinstance(decision, PollAgain)
    assert decision.not_before == NOW + timedelta(seconds=decision.delay)


def test_far_deadline_does_not_shorten_the_delay() -> None:
    assert delay_of(poll(reason=WaitReason.CONFIG_FAULT, deadline=NOW + timedelta(hours=20))) == 300.0


def test_delay_is_clamped_to_the_expiry_margin() -> None:
    # Limit = deadline - 600 s = NOW + 100 s: the last poll lands exactly on it.
    deadline = NOW + timedelta(seconds=700)
    decision = poll(reason=WaitReason.CONFIG_FAULT, deadline=deadline)
    assert isinstance(decision, PollAgain)
    assert decision.delay == 100.0
    assert decision.not_before == deadline - timedelta(seconds=POLICY.expiry_margin)


def test_retry_after_never_pushes_past_the_expiry_margin() -> None:
    assert delay_of(poll(retry_after=250.0, deadline=NOW + timedelta(seconds=630))) == 30.0


@pytest.mark.parametrize("past_limit", [timedelta(0), timedelta(seconds=1), timedelta(hours=30)])
def test_gives_up_at_or_after_the_expiry_margin(past_limit: timedelta) -> None:
    deadline = NOW + timedelta(seconds=POLICY.expiry_margin) - past_limit
    decision = poll(deadline=deadline)
    assert isinstance(decision, GiveUp)
    assert "expires at" in decision.reason


def test_give_up_reason_names_the_expiry_and_what_the_last_poll_saw() -> None:
    deadline = NOW + timedelta(seconds=300)
    decision = poll(reason=WaitReason.CONFIG_FAULT, deadline=deadline)
    assert isinstance(decision, GiveUp)
    assert "2024-11-01T12:05:00Z" in decision.reason
    assert "401/403" in decision.reason


def test_unknown_deadline_never_gives_up() -> None:
    assert delay_of(poll(attempt=10**6, deadline=None, rand=ALMOST_ONE)) == pytest.approx(300.0)


def test_expiry_margin_is_configurable() -> None:
    policy = PollPolicy(initial_delay=5.0, max_delay=300.0, expiry_margin=0.0)
    assert (
        delay_of(poll(policy=policy, reason=WaitReason.CONFIG_FAULT, deadline=NOW + timedelta(seconds=7)))
        == 7.0
    )


def test_deadline_in_another_timezone_compares_by_instant() -> None:
    plus_two = datetime(2024, 11, 1, 14, 11, 40, tzinfo=timezone(timedelta(hours=2)))  # NOW + 700 s
    assert delay_of(poll(reason=WaitReason.CONFIG_FAULT, deadline=plus_two)) == 100.0


@pytest.mark.parametrize("field", ["now", "deadline"])
def test_naive_datetimes_are_rejected(field: str) -> None:
    naive = datetime(2024, 11, 1, 12, 0, 0)  # naive on purpose
    now = naive if field == "now" else NOW
    deadline = naive if field == "deadline" else None
    with pytest.raises(ValueError, match=field):
        next_poll(
            POLICY,
            reason=WaitReason.UNFINISHED,
            attempt=0,
            retry_after=None,
            now=now,
            deadline=deadline,
            rand=fixed(0.0),
        )


# --- the policy itself ---------------------------------------------------------------------------


def test_policy_from_settings_takes_the_poll_settings() -> None:
    settings = load_settings(
        {
            "LANGUAGE_ENDPOINT": "https://example.cognitiveservices.azure.com",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "POLL_INITIAL_DELAY_SECONDS": "2.5",
            "POLL_MAX_DELAY_SECONDS": "60",
        }
    )
    assert PollPolicy.from_settings(settings) == PollPolicy(initial_delay=2.5, max_delay=60.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay": 0.0, "max_delay": 10.0},
        {"initial_delay": math.nan, "max_delay": 10.0},
        {"initial_delay": 10.0, "max_delay": 5.0},
        {"initial_delay": 5.0, "max_delay": MAX_VISIBILITY_SECONDS + 1.0},
        {"initial_delay": 5.0, "max_delay": 10.0, "expiry_margin": -1.0},
        {"initial_delay": 5.0, "max_delay": 10.0, "expiry_margin": math.inf},
    ],
)
def test_invalid_policy_is_rejected_at_construction(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollPolicy(**kwargs)


def test_policy_is_immutable() -> None:
    with pytest.raises(FrozenInstanceError):
        POLICY.max_delay = 1.0  # type: ignore[misc]


# --- queue limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "visibility"),
    [
        (0.0, 0),
        (-5.0, 0),
        (0.001, 1),
        (1.0, 1),
        (1.2, 2),
        (299.9, 300),
        (300.0, 300),
        (MAX_VISIBILITY_SECONDS - 0.5, MAX_VISIBILITY_SECONDS),
        (MAX_VISIBILITY_SECONDS + 1.0, MAX_VISIBILITY_SECONDS),
        (math.inf, MAX_VISIBILITY_SECONDS),
    ],
)
def test_queue_visibility_is_whole_seconds_rounded_up_within_limits(delay: float, visibility: int) -> None:
    assert queue_visibility(delay) == visibility


def test_queue_visibility_rejects_nan() -> None:
    with pytest.raises(ValueError):
        queue_visibility(math.nan)


def test_queue_visibility_never_makes_a_message_visible_before_not_before() -> None:
    decision = poll(attempt=3, rand=0.3)
    assert isinstance(decision, PollAgain)
    assert NOW + timedelta(seconds=queue_visibility(decision.delay)) >= decision.not_before


def test_messages_never_expire() -> None:
    assert MESSAGE_TIME_TO_LIVE == -1
    assert MAX_VISIBILITY_SECONDS == 604800


# --- Retry-After parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("1296000", 1296000.0),
        ("Fri, 01 Nov 2024 12:01:30 GMT", 90.0),
        ("Fri, 01 Nov 2024 11:00:00 GMT", 0.0),
        ("Fri, 01 Nov 2024 12:00:10 -0000", 10.0),
        ("Friday, 01-Nov-24 12:00:20 GMT", 20.0),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "1e3", "1_000", "12abc", "Fri, 99 Foo"])
def test_parse_retry_after_returns_none_for_absent_or_garbage(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


def test_an_http_date_is_read_as_an_aware_utc_time() -> None:
    assert parse_http_date("Mon, 07 Dec 2026 16:09:26 GMT") == datetime(2026, 12, 7, 16, 9, 26, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "yesterday", "Mon, 99 Foo 2026 16:09:26 GMT"])
def test_no_http_date_or_a_malformed_one_is_none(value: str | None) -> None:
    assert parse_http_date(value) is None
