"""Timestamps as the Language service writes them: UTC with ``Z``, up to 7 fractional digits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.timefmt import format_time, parse_time

NOON = datetime(2024, 11, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2024-11-01T12:00:00Z",
        "2024-11-01T12:00:00z",
        "2024-11-01T12:00:00+00:00",
        "2024-11-01T14:00:00+02:00",
        "2024-11-01T07:00:00-05:00",
        "2024-11-01T12:00:00",  # no offset: read as UTC
        " 2024-11-01T12:00:00Z ",
    ],
)
def test_parse_time_reads_z_offsets_and_naive_as_the_same_utc_instant(text: str) -> None:
    parsed = parse_time(text)

    assert parsed == NOON
    assert parsed is not None
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "microsecond"),
    [
        ("2024-11-01T12:00:00.1Z", 100_000),
        ("2024-11-01T12:00:00.123Z", 123_000),
        ("2024-11-01T12:00:00.123456Z", 123_456),
        ("2024-11-01T12:00:00.1234567Z", 123_456),
        ("2024-11-01T12:00:00.9999999Z", 999_999),
        ("2024-11-01T12:00:00.1234567+00:00", 123_456),
    ],
)
def test_parse_time_takes_up_to_seven_fractional_digits(text: str, microsecond: int) -> None:
    assert parse_time(text) == NOON.replace(microsecond=microsecond)


def test_parse_time_of_seven_digits_with_an_offset_keeps_the_offset() -> None:
    assert parse_time("2024-11-01T14:00:00.1234567+02:00") == NOON.replace(microsecond=123_456)


def test_parse_time_passes_none_through() -> None:
    assert parse_time(None) is None


@pytest.mark.parametrize("value", [1730462400, 1730462400.5, NOON, b"2024-11-01T12:00:00Z", ["x"]])
def test_parse_time_of_a_non_string_raises_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match="string"):
        parse_time(value)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2024-13-01T00:00:00Z", "2024-11-31T00:00:00Z", "2024-11-01T25:00:00Z"]
)
def test_parse_time_of_a_malformed_string_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_format_time_passes_none_through() -> None:
    assert format_time(None) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (NOON, "2024-11-01T12:00:00Z"),
        (NOON.replace(microsecond=250_000), "2024-11-01T12:00:00.250000Z"),
        (NOON.replace(microsecond=1), "2024-11-01T12:00:00.000001Z"),
        (datetime(2024, 11, 1, 14, tzinfo=timezone(timedelta(hours=2))), "2024-11-01T12:00:00Z"),
        (datetime(2024, 11, 1, 7, tzinfo=timezone(timedelta(hours=-5))), "2024-11-01T12:00:00Z"),
    ],
)
def test_format_time_writes_utc_with_z_suffix(value: datetime, text: str) -> None:
    assert format_time(value) == text


@pytest.fixture
def local_time_zone_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with the process's local time zone set to UTC+9, so "naive means local" would show."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_zone_not_utc")
def test_format_time_reads_a_naive_datetime_as_utc_like_parse_time() -> None:
    naive = datetime(2024, 11, 1, 12, 0, 0)

    assert format_time(naive) == "2024-11-01T12:00:00Z"


@pytest.mark.parametrize(
    "value",
    [
        NOON,
        NOON.replace(microsecond=123_456),
        datetime(2024, 11, 1, 14, 30, 15, 5, tzinfo=timezone(timedelta(hours=2, minutes=30))),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_format_then_parse_round_trips_the_instant(value: datetime) -> None:
    assert parse_time(format_time(value)) == value


@pytest.mark.parametrize("text", ["2024-11-01T12:00:00Z", "2024-11-01T12:00:00.250000Z"])
def test_parse_then_format_round_trips_the_service_spelling(text: str) -> None:
    assert format_time(parse_time(text)) == text
