"""NCRONTAB parsing and next occurrences, as the Functions timer trigger reads its schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from local.host.ncrontab import NCrontab, next_occurrence


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def brute_force(schedule: NCrontab, after: datetime, *, limit: timedelta) -> datetime:
    """The reference answer: test every second after ``after`` (whole days skipped when the date fails)."""
    moment = after.replace(microsecond=0) + timedelta(seconds=1)
    end = after + limit
    while moment <= end:
        if not (
            moment.day in schedule.days
            and moment.month in schedule.months
            and (moment.weekday() + 1) % 7 in schedule.days_of_week
        ):
            moment = moment.replace(hour=0, minute=0, second=0) + timedelta(days=1)
        elif (
            moment.second in schedule.seconds
            and moment.minute in schedule.minutes
            and moment.hour in schedule.hours
        ):
            return moment
        else:
            moment += timedelta(seconds=1)
    raise AssertionError(f"no occurrence of {schedule.expression!r} within {limit}")


def test_every_second_is_the_next_whole_second() -> None:
    assert next_occurrence("*/1 * * * * *", at("2024-05-01T10:00:00.250")) == at("2024-05-01T10:00:01")


def test_next_occurrence_is_strictly_after() -> None:
    assert next_occurrence("0 */5 * * * *", at("2024-05-01T10:05:00")) == at("2024-05-01T10:10:00")


def test_design_default_sweep_schedule() -> None:
    assert next_occurrence("0 */5 * * * *", at("2024-05-01T10:07:31")) == at("2024-05-01T10:10:00")


def test_fields_accept_numbers_ranges_steps_and_lists() -> None:
    schedule = NCrontab.parse("1,2,10-12 0-30/10 */6 1 1 *")
    assert schedule.seconds == (1, 2, 10, 11, 12)
    assert schedule.minutes == (0, 10, 20, 30)
    assert schedule.hours == (0, 6, 12, 18)
    assert schedule.days == (1,)
    assert schedule.months == (1,)
    assert schedule.days_of_week == tuple(range(7))


def test_single_value_with_step_runs_to_the_field_maximum() -> None:
    assert NCrontab.parse("5/20 * * * * *").seconds == (5, 25, 45)


def test_month_and_day_names_are_case_insensitive() -> None:
    schedule = NCrontab.parse("0 0 0 * jan-Mar,DEC Mon-fri")
    assert schedule.months == (1, 2, 3, 12)
    assert schedule.days_of_week == (1, 2, 3, 4, 5)
    assert NCrontab.parse("0 0 0 * february sunday").days_of_week == (0,)


def test_day_of_week_zero_is_sunday() -> None:
    # 2024-05-05 is a Sunday.
    assert next_occurrence("0 0 9 * * 0", at("2024-05-01T00:00:00")) == at("2024-05-05T09:00:00")


def test_day_and_day_of_week_must_both_match() -> None:
    # The 13th that is a Friday: September 2024, not the 13th of May (a Monday) nor any Friday.
    assert next_occurrence("0 0 0 13 * FRI", at("2024-05-01T00:00:00")) == at("2024-09-13T00:00:00")


def test_rolls_over_month_and_year() -> None:
    assert next_occurrence("0 30 8 31 * *", at("2024-11-30T12:00:00")) == at("2024-12-31T08:30:00")
    assert next_occurrence("0 0 0 1 1 *", at("2024-12-31T23:59:59")) == at("2025-01-01T00:00:00")


def test_leap_day_waits_for_a_leap_year() -> None:
    assert next_occurrence("0 0 12 29 2 *", at("2024-03-01T00:00:00")) == at("2028-02-29T12:00:00")


def test_other_timezones_are_converted_to_utc() -> None:
    after = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    result = next_occurrence("0 0 * * * *", after)
    assert result == at("2024-05-01T11:00:00")
    assert result.tzinfo is UTC


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_occurrence("* * * * * *", datetime(2024, 5, 1))


@pytest.mark.parametrize(
    "expression",
    [
        "*/7 */13 * * * *",
        "15 45 23 * * *",
        "0 0 */5 * * SAT",
        "30 5/10 1-3,22 * * MON-WED",
        "0 0 0 1,15 * *",
        "59 59 23 28-31 * *",
    ],
)
@pytest.mark.parametrize("after", ["2024-02-27T22:58:30.5", "2023-12-31T23:59:59", "2024-06-15T03:00:00"])
def test_agrees_with_a_second_by_second_search(expression: str, after: str) -> None:
    schedule = NCrontab.parse(expression)
    assert schedule.next_after(at(after)) == brute_force(schedule, at(after), limit=timedelta(days=40))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", "expected 6 fields"),
        ("* * * * * * *", "expected 6 fields"),
        ("60 * * * * *", "second: '60' is outside 0-59"),
        ("0 0 24 * * *", "hour: '24' is outside 0-23"),
        ("0 0 0 0 * *", "day: '0' is outside 1-31"),
        ("0 0 0 * 13 *", "month: '13' is outside 1-12"),
        ("0 0 0 * * 7", "day-of-week: '7' is outside 0-6"),
        ("0 30-10 * * * *", "minute: range '30-10' runs backwards"),
        ("*/0 * * * * *", "second: step must be at least 1"),
        ("*/x * * * * *", "second: step 'x' is not a number"),
        ("0 0 0 * * FUNDAY", "day-of-week: value 'FUNDAY' is not a number"),
        ("0 0 0 * * -1", "day-of-week: value '' is not a number"),
        ("0 0 0 30 2 *", "no chosen month has any of the chosen days"),
        ("0 0 0 1,,2 * *", "day: value '' is not a number"),
    ],
)
def test_bad_expression_is_a_clear_value_error(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match="NCRONTAB") as raised:
        NCrontab.parse(expression)
    assert message in str(raised.value)
