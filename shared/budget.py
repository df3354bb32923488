"""The Language request budget as pure functions: shared state in, shared state out, clock passed in.

All instances share one ``BudgetState`` (kept in a blob, see ``shared.request_budget``). It is a
token bucket whose rate is ``LANGUAGE_MAX_REQUESTS_PER_MINUTE / 60`` times a factor that only a
429 lowers:

- **Bucket.** Tokens refill at ``rate * factor`` per second up to ``capacity`` (``burst_seconds``
  of the full rate, at least one token). An instance takes tokens in batches and may spend them
  up to ``hold_seconds`` later (then they expire). In any 60-s window the app therefore spends at
  most ``capacity + rate * (60 + hold_seconds)``: the tokens in the bucket at the window's start,
  those refilled inside it, and those taken in the ``hold_seconds`` before it (a batch taken ahead
  of need, ``refill_due``, is no exception: it too is taken from the bucket and expires
  ``hold_seconds`` after its take, whenever its pacing starts). ``BudgetLimits`` keeps
  ``burst_seconds + hold_seconds <= 6`` so that this stays within the budget + 10 %. A batch is one
  ``Pacing`` (first time, spacing, tokens): its memory and the work to take it are the same at 1
  or 100,000 requests a minute.
- **429: pause for Retry-After, then back at once.** The service counts a sliding 60-s window, so
  its ``Retry-After`` says exactly when it admits again, and from then on it admits as many
  requests as leave the window: the ones the app sent a minute earlier, at its full rate. So the
  first 429 of a squeeze pauses every instance until ``throttled_until`` (Retry-After, no more;
  the bucket is emptied) and leaves the rate alone: a cut there (AIMD halving) only wastes the
  quota the service gives back. Measured: the old shape (halving on every 429 of a squeeze, a
  60-s climb) left the operator's run at 0-4 requests in the 25 s after a squeeze and ~40 s below
  its budget afterwards; this one sends again when Retry-After ends (``make bench-throttle``
  prints the climb back). Only a 429 that comes within ``probe_seconds``
  after a pause ended says that the service's limit really is below the app's rate (another
  consumer takes the quota for longer): then the factor halves, once per pause, and climbs back
  linearly to 1 within ``recover_seconds`` (seconds, not a minute: a window's worth of refusals
  is what the next 429 is there to tell). A 429 during a known pause only lengthens the pause.
- **Lateness.** How late polls come against the times the ledger recorded, including the time they
  spend waiting for a permit or a pause: the largest reported, plus every pause on top of it
  (constant during a pause, fading over a minute or so once polls are on time). The sweep adds it,
  and one ``cycle_seconds``, to its grace, so it re-drives lost messages, not jobs that only wait
  their turn.
- **Pending jobs.** An estimate of the jobs waiting for polls (instances add the jobs they start
  and remove those they end; the sweep sets the exact count from the ledger). ``cycle_seconds`` is
  how long one poll of every pending job takes at the budget: no job needs polling more
  often than that, so the worker never spends the budget re-polling a job that was just seen
  running while others wait.
- **Hostile storage, skewed clocks.** The blob is read through ``state_from_json``: a value that is
  not a finite number in range resets the state (the caller logs a WARNING); times further ahead
  than ``CLOCK_TOLERANCE_SECONDS`` are pulled back (``clamped``). Instances run the budget on the
  storage service's clock (``clock_correction``, from the blob's Last-Modified), so an instance
  whose clock runs ahead cannot push the shared times ahead and starve the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Final, NamedTuple

__all__ = [
    "CLOCK_TOLERANCE_SECONDS",
    "MAX_PAUSE_SECONDS",
    "BudgetLimits",
    "BudgetState",
    "Pacing",
    "advance",
    "clamped",
    "clock_correction",
    "cycle_seconds",
    "effective_rate",
    "paced",
    "ready_at",
    "refill_due",
    "state_from_json",
    "state_to_json",
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
#: How far ahead of the storage service's clock an instance's budget clock may run (Last-Modified
#: has whole seconds; a round trip adds a little), and how far ahead of a reader's clock a time in
#: the shared state may lie before the reader pulls it back.
CLOCK_TOLERANCE_SECONDS: Final = 2.0
#: A batch in use is followed by the next one taken ahead this long before it expires...
REFILL_BEFORE_EXPIRY_SECONDS: Final = 1.0
#: ...once it has served this many requests: an instance that sends fewer than one or two a
#: second loses nothing worth a storage transaction to the round trip of a take at need.
REFILL_MIN_SPENT: Final = 4
#: Pending jobs and lateness beyond these are nonsense in a blob (a day of lateness, a billion jobs).
_MAX_PENDING: Final = 1e9
_MAX_LATE_SECONDS: Final = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetLimits:
    """How the budget behaves; ``per_minute`` is the setting, the rest are tuned defaults."""

    per_minute: int
    burst_seconds: float = 2.5
    hold_seconds: float = 3.0
    min_factor: float = 0.1
    decrease: float = 0.5
    recover_seconds: float = 20.0  # from min_factor back to 1
    #: A 429 this soon after a pause ended means the service's limit is below the app's rate.
    probe_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.per_minute, int) or isinstance(self.per_minute, bool) or self.per_minute < 1:
            raise ValueError(f"per_minute must be an integer >= 1, got {self.per_minute!r}")
        if not (self.burst_seconds > 0 and self.hold_seconds > 0):
            raise ValueError("burst_seconds and hold_seconds must be > 0")
        if self.burst_seconds + self.hold_seconds > 60 * BURST_ALLOWANCE:
            raise ValueError("burst_seconds + hold_seconds must stay within 10 % of a minute (6 s)")
        if not (0 < self.min_factor <= 1 and 0 < self.decrease < 1 and self.recover_seconds > 0):
            raise ValueError("min_factor in (0, 1], decrease in (0, 1), recover_seconds > 0")
        if not self.probe_seconds >= 0:
            raise ValueError("probe_seconds must be >= 0")

    @property
    def rate(self) -> float:
        """Requests per second at the full budget."""
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        """``burst_seconds`` of the full rate, and at least one whole token: below 24 a minute the
        bucket would otherwise never hold one, and nothing would ever be sent."""
        return max(1.0, self.rate * self.burst_seconds)

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


class Pacing(NamedTuple):
    """``tokens`` taken together: the i-th may be spent from ``start + i * spacing``, none from
    ``expires``. Constant size, whatever the count. (A named tuple: a tenth of a frozen
    dataclass's cost on the cold-start import.)"""

    start: float
    spacing: float
    tokens: int
    expires: float

    def usable_from(self, index: int) -> float:
        return self.start + index * self.spacing

    @property
    def end(self) -> float:
        """When the token after the last would be usable: where a batch taken ahead starts."""
        return self.usable_from(self.tokens)


def effective_rate(limits: BudgetLimits, state: BudgetState) -> float:
    return limits.rate * state.factor


def advance(limits: BudgetLimits, state: BudgetState, now: float) -> BudgetState:
    """The state at ``now``: tokens refilled and the factor climbed since ``stamp`` (never backwards)."""
    if now <= state.stamp:
        return state
    start = max(state.stamp, state.throttled_until)
    # No fading during a pause: every poll waits it out, so none comes on time.
    late = state.late * math.exp(-max(0.0, now - start) / LATE_DECAY_SECONDS)
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


def paced(
    limits: BudgetLimits, state: BudgetState, now: float, granted: int, *, after: float | None = None
) -> Pacing:
    """When each of ``granted`` tokens taken at ``now`` may be spent, and when they expire.

    One every ``1 / rate`` seconds: a batch fired at once would, the moment the service's limit is
    reached, be refused whole before the first 429 could stop it. A batch is at most half the bucket
    (``burst_seconds / 2`` of the full rate), so even at the lowest factor the last token is
    usable before it expires (``hold_seconds``). A batch taken ahead starts ``after`` the held
    one's last token (``Pacing.end``), so the two together keep the same pace; it is squeezed
    into what is left of its ``hold_seconds`` when that is shorter."""
    start = now if after is None else min(max(now, after), now + limits.hold_seconds)
    expires = now + limits.hold_seconds
    room = max(expires - start, 0.0)
    spacing = min(1.0 / effective_rate(limits, state), room / (granted + 1))
    return Pacing(start=start, spacing=spacing, tokens=max(0, granted), expires=expires)


def refill_due(limits: BudgetLimits, state: BudgetState, held: Pacing, spent: int, now: float) -> bool:
    """Whether an instance spending ``held`` (``spent`` of it gone) takes its next batch now, ahead
    of need, from the shared ``state`` it last saw.

    A take at need stops the instance's requests for a storage round trip (40 ms across regions:
    a tenth of a job's poll); taken ahead, the next batch is there when the held one runs out.
    Only when it pays: the held batch is half spent, or it expires within
    ``REFILL_BEFORE_EXPIRY_SECONDS`` after serving ``REFILL_MIN_SPENT`` requests (a busy instance);
    and the bucket as last seen holds at least as many tokens as the held batch, so the take
    ahead costs no more storage transactions per request than the one it replaces. Near the
    budget's limit the bucket is empty and takes wait for need, as before."""
    remaining = held.tokens - spent
    if remaining <= 0 or held.expires <= now or now < state.throttled_until:
        return False
    running_low = remaining <= spent
    expiring = held.expires - now <= REFILL_BEFORE_EXPIRY_SECONDS and spent >= REFILL_MIN_SPENT
    if not (running_low or expiring):
        return False
    return advance(limits, state, now).tokens >= min(held.tokens, limits.batch)


def throttle(limits: BudgetLimits, state: BudgetState, now: float, retry_after: float | None) -> BudgetState:
    """A 429: pause everyone for ``Retry-After`` (no more); halve the rate only when the service
    refuses again within ``probe_seconds`` of the last pause (see the module docstring)."""
    state = advance(limits, state, now)
    pause = DEFAULT_PAUSE_SECONDS if retry_after is None or not retry_after >= 0 else retry_after
    pause = min(pause, MAX_PAUSE_SECONDS)
    until = max(now + pause, state.throttled_until)
    if now < state.throttled_until:
        factor = state.factor  # sent before the pause was known: the same refusal
    elif state.throttled_until > 0 and now - state.throttled_until < limits.probe_seconds:
        factor = max(limits.min_factor, state.factor * limits.decrease)
    else:
        factor = state.factor  # the first of a squeeze: Retry-After says all there is
    return replace(
        state,
        tokens=0.0,
        factor=factor,
        throttled_until=until,
        # Every poll waits out the pause on top of what it waited already: the sweep must too.
        late=min(_MAX_LATE_SECONDS, state.late + until - max(now, state.throttled_until)),
    )


def with_pending(state: BudgetState, *, delta: float = 0.0, exact: float | None = None) -> BudgetState:
    """Pending jobs moved by ``delta`` (instances), or set to ``exact`` (the sweep); never negative."""
    value = exact if exact is not None else state.pending + delta
    return replace(state, pending=min(_MAX_PENDING, max(0.0, value)))


def with_lateness(state: BudgetState, seconds: float) -> BudgetState:
    """A poll came ``seconds`` after the time the ledger recorded for it."""
    if not math.isfinite(seconds):
        return state
    return replace(state, late=min(_MAX_LATE_SECONDS, max(state.late, seconds)))


def cycle_seconds(limits: BudgetLimits, state: BudgetState) -> float:
    """Seconds for one poll of every pending job at the full budget.

    Not at the reduced rate: a 429 lowers that for a while, and jobs rescheduled then would
    otherwise stay away for hours after the rate has climbed back."""
    return state.pending / limits.rate


def state_to_json(state: BudgetState) -> bytes:
    return json.dumps(asdict(state), separators=(",", ":")).encode()


def state_from_json(limits: BudgetLimits, data: bytes, now: float) -> BudgetState:
    """The shared state as the blob holds it, checked; ``ValueError`` (saying why) when unusable.

    Unknown keys are ignored (a newer version may add some); a missing ``tokens`` or ``stamp``, a
    value that is not a finite number (NaN, infinity, a string, a bool), a negative one or a factor
    outside ``[min_factor, 1]`` makes the whole state unusable. Tokens above the capacity (the
    setting was lowered) are cut to it; times ahead of ``now`` are pulled back (``clamped``)."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    values: dict[str, float] = {}
    for field in fields(BudgetState):
        if field.name not in raw:
            if field.name in ("tokens", "stamp"):
                raise ValueError(f"{field.name} is missing")
            continue
        value = raw[field.name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{field.name} is not a finite number: {str(value)[:40]!r}")
        if value < 0:
            raise ValueError(f"{field.name} is negative: {value!r}")
        values[field.name] = float(value)
    if not limits.min_factor - 1e-9 <= values.get("factor", 1.0) <= 1.0:
        raise ValueError(f"factor {values['factor']!r} is outside [{limits.min_factor}, 1]")
    if values.get("pending", 0.0) > _MAX_PENDING:
        raise ValueError(f"pending {values['pending']!r} is beyond any real backlog")
    values["tokens"] = min(values["tokens"], limits.capacity)
    values["late"] = min(values.get("late", 0.0), _MAX_LATE_SECONDS)
    return clamped(BudgetState(**values), now)


def clamped(state: BudgetState, now: float) -> BudgetState:
    """``state`` with no time further ahead of ``now`` than a clock may be off (``stamp``) or a
    pause may last (``throttled_until``): a clock that ran ahead cannot hold the others back."""
    stamp = min(state.stamp, now + CLOCK_TOLERANCE_SECONDS)
    until = min(state.throttled_until, now + MAX_PAUSE_SECONDS + CLOCK_TOLERANCE_SECONDS)
    if stamp == state.stamp and until == state.throttled_until:
        return state
    return replace(state, stamp=stamp, throttled_until=until)


def clock_correction(
    current: float, *, sent: float, received: float, server: float, written: bool = True
) -> float:
    """The seconds to add to the local clock so it agrees with the storage service's, within
    ``CLOCK_TOLERANCE_SECONDS``: ``current`` unless this answer shows it is off by more.

    ``server`` is the Last-Modified of a write made between ``sent`` and ``received`` (local
    clock): the service's time then lay in ``[server, server + 1)`` (whole seconds), so its
    offset from the local clock lies in ``(server - received, server + 1 - sent)``. For a read
    (``written`` false) Last-Modified is an earlier write's: only the lower bound holds."""
    if not (math.isfinite(sent) and math.isfinite(received) and math.isfinite(server)) or received < sent:
        return current
    low, high = server - received, (server + 1.0 - sent if written else math.inf)
    return min(max(current, low - CLOCK_TOLERANCE_SECONDS), high + CLOCK_TOLERANCE_SECONDS)
