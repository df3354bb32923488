"""The Language request budget as pure functions: shared state in, shared state out, clock passed in.

All instances share one ``BudgetState`` (kept in a blob, see ``shared.throttle``). It is a token
bucket whose rate is ``LANGUAGE_MAX_REQUESTS_PER_MINUTE / 60`` times an AIMD factor:

- **Bucket.** Tokens refill at ``rate * factor`` per second up to ``capacity`` (``burst_seconds``
  of the full rate). An instance takes tokens in batches and may spend them up to ``hold_seconds``
  later (then they expire). In any 60-s window the app therefore spends at most
  ``capacity + rate * (60 + hold_seconds)``: the tokens in the bucket at the window's start, those
  refilled inside it, and those taken in the ``hold_seconds`` before it. ``BudgetLimits`` keeps
  ``burst_seconds + hold_seconds <= 6`` so that this stays within the budget + 10 %.
- **AIMD.** A 429 means someone else uses the quota (the upstream's submissions, another app): the
  factor halves (multiplicative decrease), the bucket empties and nothing is granted before
  ``throttled_until`` (the service's ``Retry-After``). Afterwards the factor climbs back linearly to
  1 over ``recover_seconds`` (additive increase): jumping straight back to the full rate would hit
  the same limit again at once, and every instance would be refused together; a slow climb finds
  the rate the service now allows and stays just under it. A 429 reported while a known pause is
  still running only lengthens the pause: one storm halves the rate once, not once per request.
- **Lateness.** How late polls come against the times the ledger recorded (the largest reported,
  fading over a minute or so once polls are on time). While the service is throttled for minutes
  (an upstream burst), polls queue up behind the budget; the sweep adds this to its grace, so it
  re-drives lost messages, not jobs that only wait their turn.
- **Pending jobs.** An estimate of the jobs waiting for polls (instances add the jobs they start
  and remove those they end; the sweep sets the exact count from the ledger). ``cycle_seconds`` is
  how long one poll of every pending job takes at the budget: no job needs polling more
  often than that, so the worker never spends the budget re-polling a job that was just seen
  running while others wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

__all__ = [
    "MAX_PAUSE_SECONDS",
    "BudgetLimits",
    "BudgetState",
    "advance",
    "cycle_seconds",
    "effective_rate",
    "paced",
    "ready_at",
    "take",
    "throttle",
    "with_lateness",
    "with_pending",
]

#: A rate limit counts requests per minute: no 429 needs a pause longer than that, whatever a
#: proxy writes in Retry-After (the job itself is rescheduled through the queue meanwhile).
MAX_PAUSE_SECONDS: Final = 60.0
#: A 429 without a usable Retry-After still pauses everyone this long.
DEFAULT_PAUSE_SECONDS: Final = 2.0
#: The most the window may exceed the budget (DESIGN.md: a burst of at most 10 % over).
BURST_ALLOWANCE: Final = 0.10
#: Reported lateness fades with this time constant once polls come on time again.
LATE_DECAY_SECONDS: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetLimits:
    """How the budget behaves; ``per_minute`` is the setting, the rest are tuned defaults."""

    per_minute: int
    burst_seconds: float = 2.5
    hold_seconds: float = 3.0
    min_factor: float = 0.1
    decrease: float = 0.5
    recover_seconds: float = 60.0  # from min_factor back to 1

    def __post_init__(self) -> None:
        if not isinstance(self.per_minute, int) or self.per_minute < 1:
            raise ValueError(f"per_minute must be an integer >= 1, got {self.per_minute!r}")
        if not (self.burst_seconds > 0 and self.hold_seconds > 0):
            raise ValueError("burst_seconds and hold_seconds must be > 0")
        if self.burst_seconds + self.hold_seconds > 60 * BURST_ALLOWANCE:
            raise ValueError("burst_seconds + hold_seconds must stay within 10 % of a minute (6 s)")
        if not (0 < self.min_factor <= 1 and 0 < self.decrease < 1 and self.recover_seconds > 0):
            raise ValueError("min_factor in (0, 1], decrease in (0, 1), recover_seconds > 0")

    @property
    def rate(self) -> float:
        """Requests per second at the full budget."""
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return self.rate * self.burst_seconds

    @property
    def batch(self) -> int:
        """The most tokens one take asks for: half the bucket, so two instances can share a burst."""
        return max(1, math.floor(self.capacity / 2))

    def window_bound(self) -> float:
        """The most requests any 60-s window can hold (see the module docstring)."""
        return self.capacity + self.rate * (60.0 + self.hold_seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetState:
    """The shared state; times are seconds since the epoch (``time.time()`` or a virtual clock)."""

    tokens: float
    stamp: float
    factor: float = 1.0
    throttled_until: float = 0.0
    pending: float = 0.0
    #: How late the app's polls come against the times the ledger recorded (seconds, the largest
    #: reported lately, decaying): a backlog the sweep must not mistake for lost messages.
    late: float = 0.0

    @classmethod
    def initial(cls, limits: BudgetLimits, now: float) -> BudgetState:
        # Start empty: a fresh blob (or one recreated after a loss) must not add a whole bucket to
        # a window that may already hold requests.
        return cls(tokens=0.0, stamp=now)


def effective_rate(limits: BudgetLimits, state: BudgetState) -> float:
    return limits.rate * state.factor


def advance(limits: BudgetLimits, state: BudgetState, now: float) -> BudgetState:
    """The state at ``now``: tokens refilled and the factor climbed since ``stamp`` (never backwards)."""
    if now <= state.stamp:
        return state
    late = state.late * math.exp(-(now - state.stamp) / LATE_DECAY_SECONDS)
    start = max(state.stamp, state.throttled_until)
    if now <= start:
        return replace(state, stamp=now, late=late)
    elapsed = now - start
    slope = (1.0 - limits.min_factor) / limits.recover_seconds
    climbing = min(elapsed, max(0.0, (1.0 - state.factor) / slope))
    # Integral of the factor: linear while climbing, 1 afterwards.
    area = state.factor * climbing + slope * climbing * climbing / 2 + (elapsed - climbing)
    return replace(
        state,
        tokens=min(limits.capacity, state.tokens + limits.rate * area),
        factor=min(1.0, state.factor + slope * elapsed),
        stamp=now,
        late=late,
    )


def take(limits: BudgetLimits, state: BudgetState, now: float, wanted: int) -> tuple[BudgetState, int]:
    """Take up to ``wanted`` whole tokens (at most ``limits.batch``); the new state and how many."""
    state = advance(limits, state, now)
    if now < state.throttled_until or wanted < 1:
        return state, 0
    granted = min(wanted, limits.batch, math.floor(state.tokens + 1e-9))
    return replace(state, tokens=max(0.0, state.tokens - granted)), granted


def ready_at(limits: BudgetLimits, state: BudgetState, now: float, wanted: int = 1) -> float:
    """When ``wanted`` tokens (at most a batch) will be there; never late, since the factor only grows.

    Waiting for a whole batch when that many requests wait is what keeps the storage cost at one
    transaction per batch at full rate: those requests could not go sooner anyway."""
    state = advance(limits, state, now)
    start = max(now, state.throttled_until)
    missing = max(0.0, min(max(wanted, 1), limits.batch) - state.tokens)
    return start + missing / effective_rate(limits, state)


def paced(limits: BudgetLimits, state: BudgetState, now: float, granted: int) -> list[tuple[float, float]]:
    """When each of ``granted`` tokens taken at ``now`` may be spent, and when it expires.

    One every ``1 / rate`` seconds: a batch fired at once would, the moment the service's limit is
    reached, be refused whole before the first 429 could stop it. A batch is at most half the bucket
    (``burst_seconds / 2`` of the full rate), so even at the lowest AIMD factor the last token is
    usable before it expires (``hold_seconds``)."""
    spacing = min(1.0 / effective_rate(limits, state), limits.hold_seconds / (granted + 1))
    expires = now + limits.hold_seconds
    return [(now + index * spacing, expires) for index in range(granted)]


def throttle(limits: BudgetLimits, state: BudgetState, now: float, retry_after: float | None) -> BudgetState:
    """A 429: pause everyone for ``Retry-After`` and, unless this pause is already known, halve the rate."""
    state = advance(limits, state, now)
    pause = DEFAULT_PAUSE_SECONDS if retry_after is None or not retry_after >= 0 else retry_after
    until = now + min(pause, MAX_PAUSE_SECONDS)
    known = now < state.throttled_until
    factor = state.factor if known else max(limits.min_factor, state.factor * limits.decrease)
    return replace(state, tokens=0.0, factor=factor, throttled_until=max(until, state.throttled_until))


def with_pending(state: BudgetState, *, delta: float = 0.0, exact: float | None = None) -> BudgetState:
    """Pending jobs moved by ``delta`` (instances), or set to ``exact`` (the sweep); never negative."""
    value = exact if exact is not None else state.pending + delta
    return replace(state, pending=max(0.0, value))


def with_lateness(state: BudgetState, seconds: float) -> BudgetState:
    """A poll came ``seconds`` after the time the ledger recorded for it."""
    return replace(state, late=max(state.late, seconds))


def cycle_seconds(limits: BudgetLimits, state: BudgetState) -> float:
    """Seconds for one poll of every pending job at the full budget.

    Not at the AIMD rate: a 429 halves that for a minute or so, and jobs rescheduled then would
    otherwise stay away for hours after the rate has climbed back."""
    return state.pending / limits.rate
