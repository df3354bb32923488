"""When to poll a job next: a pure function of what the last poll saw.

``next_poll`` does no I/O, never sleeps and draws no global randomness: the caller passes the clock
(``now``) and a uniform ``[0, 1)`` source (``rand``), so every decision is reproducible in a test and
the worker alone decides how to wait (a queue visibility delay, never ``asyncio.sleep``).

The rules (DESIGN.md, "Polling"):

- unfinished and transient: exponential backoff with full jitter, bounded below by the first delay;
- ``Retry-After`` is a floor up to the cap: a quota 403 that says "retry after 15 days" waits the cap;
- configuration faults (401/403) wait the cap: loud, but patient until someone fixes the setting;
- a 404 for a job submitted moments ago waits the first delay (the service may not know it yet);
- never past the job's ``expirationDateTime`` minus a margin, at which point the answer is ``GiveUp``.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "MAX_VISIBILITY_SECONDS",
    "MESSAGE_TIME_TO_LIVE",
    "GiveUp",
    "PollAgain",
    "PollPolicy",
    "WaitReason",
    "next_poll",
    "parse_http_date",
    "parse_retry_after",
    "queue_visibility",
]

#: The storage queue's hard limit on a message's visibility timeout (7 days), in seconds.
MAX_VISIBILITY_SECONDS: Final = 7 * 24 * 3600

#: ``messageTimeToLive`` for every job message the app enqueues: -1 means "never expires". The
#: service's default (7 days) would be enough for a 24-hour job, but a TTL must also exceed the
#: message's visibility delay, and a job message that expires is a job that vanishes without a
#: manifest. Only the app's own dequeue (or the poison path) may remove one.
MESSAGE_TIME_TO_LIVE: Final = -1


class WaitReason(enum.Enum):
    """Why the job is polled again; each reason has its own delay rule."""

    UNFINISHED = "unfinished"  # notStarted, running, cancelling, or an unknown status
    TRANSIENT = "transient"  # 429, 5xx, timeouts, resets, a body that is not JSON
    CONFIG_FAULT = "configFault"  # 401, 403: a setting or a role assignment is wrong
    NOT_FOUND_GRACE = "notFoundGrace"  # 404 for a job first seen moments after its submission


@dataclass(frozen=True, slots=True, kw_only=True)
class PollPolicy:
    """The delays of the poll loop, validated once (``Settings`` has already checked the same)."""

    initial_delay: float
    max_delay: float
    #: Polling stops this long before the job's ``expirationDateTime``: archiving every page of a
    #: finished job takes time, and the service purges it at that instant.
    expiry_margin: float = 600.0

    def __post_init__(self) -> None:
        if not (0 < self.initial_delay < math.inf):
            raise ValueError(f"initial_delay must be a positive finite number, got {self.initial_delay!r}")
        if not (self.initial_delay <= self.max_delay <= MAX_VISIBILITY_SECONDS):
            raise ValueError(
                f"max_delay must lie in [initial_delay, {MAX_VISIBILITY_SECONDS}] "
                f"(the queue's visibility limit), got {self.max_delay!r}"
            )
        if not (0 <= self.expiry_margin < math.inf):
            raise ValueError(f"expiry_margin must be a finite number >= 0, got {self.expiry_margin!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        return cls(
            initial_delay=settings.poll_initial_delay_seconds,
            max_delay=settings.poll_max_delay_seconds,
        )


@dataclass(frozen=True, slots=True)
class PollAgain:
    """Poll again after ``delay`` seconds, that is not before ``not_before`` (what the ledger records)."""

    delay: float
    not_before: datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop polling: the job reached its expiry margin. ``reason`` goes into the manifest's errors."""

    reason: str


# What the last poll saw, for the reason of a GiveUp (it ends up in the manifest's errors).
_GIVE_UP_STATE: Final = {
    WaitReason.UNFINISHED: "the job was still unfinished",
    WaitReason.TRANSIENT: "the service was still failing transiently",
    WaitReason.CONFIG_FAULT: "the service still refused the credential (401/403)",
    WaitReason.NOT_FOUND_GRACE: "the service still did not know the job (404)",
}

# 2.0 ** 1024 raises OverflowError; 2.0 ** 1023 does not, and multiplying it by the first delay at
# worst gives inf, which the cap absorbs. Far beyond any real attempt count, so the cap is reached.
_MAX_EXPONENT: Final = 1023


def next_poll(
    policy: PollPolicy,
    *,
    reason: WaitReason,
    attempt: int,
    retry_after: float | None,
    now: datetime,
    deadline: datetime | None,
    rand: Callable[[], float],
    floor: float = 0.0,
) -> PollAgain | GiveUp:
    """Decide when to poll a job next, or that polling must stop.

    ``attempt`` counts the reschedules before this one (0 for the first); ``retry_after`` is the
    service's ``Retry-After`` in seconds (see ``parse_retry_after``); ``deadline`` is the job's
    ``expirationDateTime`` (``None`` while unknown); ``now`` and ``deadline`` are timezone-aware;
    ``rand`` returns a uniform float in ``[0, 1)`` and is called at most once; ``floor`` is the
    request budget's cycle (seconds to poll every pending job once): when the budget is the
    bottleneck no job is polled more often than that, above the cap if need be, but never past the
    expiry margin.
    """
    _require_aware("now", now)
    limit: datetime | None = None
    if deadline is not None:
        _require_aware("deadline", deadline)
        limit = deadline - timedelta(seconds=policy.expiry_margin)
        if now >= limit:
            return GiveUp(
                f"the job expires at {_iso(deadline)} and polling stops {policy.expiry_margin:g} s "
                f"before that ({_iso(limit)}) to leave time for the archive; at {_iso(now)} "
                f"{_GIVE_UP_STATE[reason]}"
            )

    if reason is WaitReason.CONFIG_FAULT:
        delay = policy.max_delay
    elif reason is WaitReason.NOT_FOUND_GRACE:
        delay = policy.initial_delay
    else:
        delay = _backoff(policy, attempt, rand)

    # Retry-After is a floor, never a wait longer than the cap: a quota 403 says "days", and a job
    # must be polled again before it expires. NaN fails the comparison and is ignored with negatives.
    if retry_after is not None and retry_after >= 0:
        delay = max(delay, min(retry_after, policy.max_delay))

    delay = max(delay, floor)

    if limit is not None:
        # The last poll lands exactly at the limit; if it is still unfinished then, the next call
        # returns GiveUp and the worker writes the timedOut manifest.
        delay = min(delay, (limit - now).total_seconds())
    return PollAgain(delay=delay, not_before=now + timedelta(seconds=delay))


def _backoff(policy: PollPolicy, attempt: int, rand: Callable[[], float]) -> float:
    # The attempt count travels in the app's own queue message; a negative one (a bug, a hand-made
    # message) means "first" rather than a crash in the middle of a poll.
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    ceiling = min(policy.max_delay, policy.initial_delay * 2.0**exponent)
    r = rand()
    if not (0.0 <= r < 1.0):
        raise ValueError(f"rand() must return a float in [0, 1), got {r!r}")
    # Full jitter spreads the polls of jobs submitted together, but from the first delay upwards:
    # a poll sooner than POLL_INITIAL_DELAY_SECONDS is never what the operator asked for.
    return policy.initial_delay + r * (ceiling - policy.initial_delay)


def queue_visibility(delay: float) -> int:
    """The visibility timeout for a message due in ``delay`` seconds, within the queue's limits.

    Whole seconds, rounded up so that a message never becomes visible before the time the ledger
    recorded; at least 1 for any positive delay, at most 7 days; 0 (visible now) for 0 or less.
    """
    if math.isnan(delay):
        raise ValueError("delay is NaN")
    if delay <= 0:
        return 0
    if delay >= MAX_VISIBILITY_SECONDS:
        return MAX_VISIBILITY_SECONDS
    return max(1, math.ceil(delay))


# RFC 9110 says 1*DIGIT; a sign and a fraction are accepted because some gateways send them. Not
# float(): it also takes "nan", "inf", "1e9" and "1_000".
_DELTA_SECONDS: Final = re.compile(r"[+-]?\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    ``None`` when absent or unparseable; a negative delta or a date in the past gives 0.
    """
    _require_aware("now", now)
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return max(0.0, float(text))
    when = parse_http_date(text)
    return None if when is None else max(0.0, (when - now).total_seconds())


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date (``Date``, ``Retry-After``) as an aware datetime; ``None`` when absent or unparseable."""
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # An HTTP-date is always GMT; "-0000" makes parsedate_to_datetime return a naive datetime.
        when = when.replace(tzinfo=UTC)
    return when


def _require_aware(name: str, value: datetime) -> None:
    # A naive datetime compared with the service's UTC timestamps raises TypeError at best, or is
    # silently off by the machine's UTC offset at worst.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
