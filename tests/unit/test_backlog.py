"""The age of a queue's oldest message: a pure function of its insertion time and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.backlog import oldest_age

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


def test_the_age_is_the_seconds_since_insertion() -> None:
    assert oldest_age(NOW - timedelta(minutes=3), now=NOW) == 180.0


def test_no_message_has_no_age() -> None:
    assert oldest_age(None, now=NOW) == 0.0


@given(inserted=TIMES, now=TIMES)
def test_the_age_is_never_negative_even_when_the_queue_s_clock_runs_ahead(
    inserted: datetime, now: datetime
) -> None:
    age = oldest_age(inserted, now=now)
    assert age >= 0
    assert age == max(0.0, (now - inserted).total_seconds())
