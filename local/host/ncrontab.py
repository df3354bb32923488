"""NCRONTAB schedules as the Functions timer trigger reads them, evaluated in UTC.

Six fields: ``{second} {minute} {hour} {day} {month} {day-of-week}``. Each field is ``*``, a number,
``a-b``, a step (``*/n``, ``a-b/n``, ``a/n`` = from ``a`` to the field's maximum) or a comma list of
those. Months and days of the week also take English names (``JAN``, ``January``, ``MON``, ...);
day-of-week 0 is Sunday. As in NCrontab (and unlike Vixie cron), a restricted day-of-month and a
restricted day-of-week must both match.
"""

from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["NCrontab", "next_occurrence"]

_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTH_NAMES |= {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
# calendar numbers Monday 0; NCRONTAB numbers Sunday 0.
_DAY_NAMES = {name.lower(): (number + 1) % 7 for number, name in enumerate(calendar.day_name)}
_DAY_NAMES |= {name.lower(): (number + 1) % 7 for number, name in enumerate(calendar.day_abbr)}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]

    def parse(self, text: str) -> tuple[int, ...]:
        values: set[int] = set()
        for part in text.split(","):
            values.update(self._parse_part(part))
        return tuple(sorted(values))

    def _parse_part(self, part: str) -> range:
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            step = self._number(step_text, what="step")
            if step < 1:
                raise ValueError(f"{self.name}: step must be at least 1, got {step_text!r}")
        if base == "*":
            return range(self.low, self.high + 1, step)
        first_text, dash, last_text = base.partition("-")
        first = self._value(first_text)
        # "a/n" runs from a to the field's maximum, as NCrontab reads it.
        last = self._value(last_text) if dash else (self.high if slash else first)
        if first > last:
            raise ValueError(f"{self.name}: range {base!r} runs backwards")
        return range(first, last + 1, step)

    def _value(self, text: str) -> int:
        named = self.names.get(text.lower())
        value = named if named is not None else self._number(text, what="value")
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.name}: {text!r} is outside {self.low}-{self.high}")
        return value

    def _number(self, text: str, *, what: str) -> int:
        if not text.isdigit():
            raise ValueError(f"{self.name}: {what} {text!r} is not a number")
        return int(text)


_FIELDS = (
    _Field("second", 0, 59, {}),
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 6, _DAY_NAMES),
)
# A leap day on a given weekday recurs within 40 years; past this the search has a bug.
_SEARCH_YEARS = 400


@dataclass(frozen=True)
class NCrontab:
    """A parsed schedule: the allowed values of each field, sorted."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]

    @classmethod
    def parse(cls, expression: str) -> NCrontab:
        """Parse a six-field expression; ValueError says which field is wrong and why."""
        parts = expression.split()
        if len(parts) != len(_FIELDS):
            raise ValueError(
                f"NCRONTAB {expression!r}: expected 6 fields "
                "'{second} {minute} {hour} {day} {month} {day-of-week}', "
                f"got {len(parts)}"
            )
        try:
            values = [field.parse(part) for field, part in zip(_FIELDS, parts, strict=True)]
        except ValueError as error:
            raise ValueError(f"NCRONTAB {expression!r}: {error}") from None
        schedule = cls(expression, *values)
        # Leap year 2000 gives February 29 days: a day that no chosen month has never occurs.
        if not any(
            day <= calendar.monthrange(2000, month)[1] for month in schedule.months for day in schedule.days
        ):
            raise ValueError(f"NCRONTAB {expression!r}: no chosen month has any of the chosen days")
        return schedule

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after ``after`` (timezone-aware), in UTC."""
        if after.tzinfo is None:
            raise ValueError("next_after needs a timezone-aware datetime, got a naive one")
        moment = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        last_year = moment.year + _SEARCH_YEARS
        # Each step moves to the start of the next candidate of the largest field that does not match.
        while moment.year <= last_year:
            if moment.month not in self.months:
                month = _following(self.months, moment.month)
                moment = (
                    datetime(moment.year, month, 1, tzinfo=UTC)
                    if month is not None
                    else datetime(moment.year + 1, self.months[0], 1, tzinfo=UTC)
                )
            elif moment.day not in self.days:
                day = _following(self.days, moment.day)
                if day is None or day > calendar.monthrange(moment.year, moment.month)[1]:
                    moment = _midnight(moment.replace(day=1) + timedelta(days=32)).replace(day=1)
                else:
                    moment = _midnight(moment.replace(day=day))
            elif (moment.weekday() + 1) % 7 not in self.days_of_week:
                moment = _midnight(moment) + timedelta(days=1)
            elif moment.hour not in self.hours:
                hour = _following(self.hours, moment.hour)
                start_of_hour = moment.replace(minute=0, second=0)
                moment = (
                    start_of_hour.replace(hour=hour)
                    if hour is not None
                    else _midnight(moment) + timedelta(days=1)
                )
            elif moment.minute not in self.minutes:
                minute = _following(self.minutes, moment.minute)
                start_of_minute = moment.replace(second=0)
                moment = (
                    start_of_minute.replace(minute=minute)
                    if minute is not None
                    else start_of_minute.replace(minute=0) + timedelta(hours=1)
                )
            elif moment.second not in self.seconds:
                second = _following(self.seconds, moment.second)
                moment = (
                    moment.replace(second=second)
                    if second is not None
                    else moment.replace(second=0) + timedelta(minutes=1)
                )
            else:
                return moment
        raise AssertionError(f"NCRONTAB {self.expression!r}: no occurrence within {_SEARCH_YEARS} years")


def next_occurrence(expr: str, after: datetime) -> datetime:
    """The first occurrence of ``expr`` strictly after ``after`` (timezone-aware), in UTC."""
    return NCrontab.parse(expr).next_after(after)


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0)


def _following(allowed: tuple[int, ...], current: int) -> int | None:
    """The smallest allowed value above ``current``, or None when the field must roll over."""
    index = bisect.bisect_right(allowed, current)
    return allowed[index] if index < len(allowed) else None
