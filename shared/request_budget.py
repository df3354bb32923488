"""The Language request budget shared by every instance, through one small blob in the app's storage.

Why a token bucket in one blob, updated by ETag compare-and-swap: it needs nothing but the storage
account the app already has (no Redis, no API Management), and the whole policy is the pure
``shared.budget`` on a few numbers, so a virtual-time simulation runs the same code. The
partitioned-lease pattern (Azure Architecture Center, "rate limiting") spreads contention over
many blobs, which matters for hundreds of instances; at this app's rates (a few to tens of
requests a second) one blob sees a handful of writes a second, far below a blob's limit.

What it costs: an instance takes tokens in batches (up to half the bucket, 12 at the default 600
a minute) with one conditional PUT; it keeps the state and ETag that PUT returned, so it reads the
blob again (one GET) only when another instance wrote in between (412). At full rate that is at
most one storage transaction per ``batch`` Language requests (>= 10 from 480 a minute up). An idle
instance (no request waiting) sends nothing. Unused tokens expire ``hold_seconds`` after they were
taken, which bounds how far local spending can lag the shared bucket (see ``shared.budget``).

What it costs in time: nothing while the budget is far from its limit. A busy instance takes its
next batch in the background before the held one runs out (``shared.budget.refill_due``), so no
request waits for that PUT; measured with 40 ms storage round trips, a take at need held the
first polls of every 3-s hold back by one to several round trips (``make bench``). One take is in
flight per instance at a time (the waiting loop's, a take ahead, a 429 or the sweep's count):
they share one ETag, and two at once would only make one of them read the blob again. So a take
fails within seconds when storage does (``BlobBudgetStore.REQUEST_OPTIONS``), and the instance goes
on alone with one batch at the last rate it knew: waiting out the SDK's backoff there would hold
every request of the instance.

A batch is spent at the app's rate, not all at once (``shared.budget.paced``): when the service
answers 429 the instance has sent one or two of its batch into the refusal, not ten.

No request waits longer than its caller allows (``give_up_at``; the worker gives an invocation 30 s
in all): when the pause or the queue ahead of it says it cannot be served by then it gets
``BudgetBusy`` at once, else when the time is up, with the seconds until the budget likely has room;
the worker puts the poll back on the queue, due then (DESIGN.md, "Language request budget").

The blob is checked when read (``shared.budget.state_from_json``: reset with a WARNING when it holds
nonsense) and the budget runs on the storage service's clock (``clock_correction`` from each
answer's Last-Modified), so an instance whose clock is wrong cannot push the shared state ahead.

Waiting is fair: waiters are served in the order of their job's deadline (nearest expiry first),
then first come first served. A 429 empties this instance's tokens at once (its other requests stop
before the next take) and pauses every instance through the shared state.

The blob lives where the Functions host keeps its own coordination state, the container
``azure-webjobs-hosts`` of ``AzureWebJobsStorage`` (``archiver/<ARCHIVE_CONTAINER>/language-requests.json``):
every Functions app has it, the app's identity is granted it (infra/modules/roles.bicep), and the
lifecycle rule that expires the host's constantly rewritten lock blobs expires this blob's old
versions too. The archive holds only archived jobs and the ledger only job records.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Final, Protocol

from azure.core.exceptions import (
    AzureError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import ContainerClient

from .budget import (
    DEFAULT_PAUSE_SECONDS,
    MAX_PAUSE_SECONDS,
    BudgetLimits,
    BudgetState,
    Pacing,
    advance,
    clamped,
    clock_correction,
    cycle_seconds,
    effective_rate,
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
from .policy import parse_http_date
from .storage import swap_blob_written

__all__ = [
    "HOST_CONTAINER",
    "BlobBudgetStore",
    "BudgetBusy",
    "BudgetStore",
    "Permits",
    "RequestBudget",
    "Unlimited",
    "budget_blob",
]

_log = logging.getLogger("archiver.budget")

#: The Functions host's own container in ``AzureWebJobsStorage`` (its locks and timer state).
HOST_CONTAINER: Final = "azure-webjobs-hosts"
#: Compare-and-swap rounds before a take gives up for now (and tries again a little later).
_MAX_SWAPS: Final = 8
#: The shortest sleep of the waiting loop, and the random spread added to it so that instances
#: that found the bucket empty together do not come back together.
_MIN_SLEEP: Final = 0.02
_SPREAD: Final = 0.25
#: After other writers won every compare-and-swap round, a take is tried again within this long.
_STORAGE_RETRY_SECONDS: Final = 1.0
#: The shortest "come back in" a busy budget answers: a poll is never rescheduled for no time.
_MIN_BUSY_SECONDS: Final = 1.0


class BudgetBusy(Exception):
    """No permit within the time the caller allowed; the request was not sent."""

    def __init__(self, wait: float) -> None:
        self.wait = max(_MIN_BUSY_SECONDS, wait)
        super().__init__(f"the Language request budget has no room for about {self.wait:.0f} s")


class BudgetStore(Protocol):
    """Where the shared state lives: its bytes, swapped only if nobody wrote since ``etag``."""

    async def load(self) -> tuple[bytes | None, str | None, float | None]:
        """The blob's bytes, ETag and Last-Modified (epoch seconds); when there is none, ``None``s
        and the answer's Date (the service's time during the read) if it gave one."""
        ...

    async def swap(self, data: bytes, etag: str | None) -> tuple[str, float | None] | None:
        """The new ETag and Last-Modified, or ``None`` when another writer got there first
        (``etag`` None: create)."""
        ...


def budget_blob(archive_container: str) -> str:
    """The budget's blob name in ``HOST_CONTAINER``: one budget per archiver, as each has its setting."""
    return f"archiver/{archive_container}/language-requests.json"


class BlobBudgetStore:
    """The state as a small JSON blob, written with If-Match (or If-None-Match: * to create)."""

    #: A real budget blob is ~150 bytes; anything far larger is not ours and is not read whole.
    _MAX_BYTES: Final = 4096
    #: Per-call options: a swap holds every waiting request of the instance, so it must fail in
    #: seconds, not after the SDK's backoff (15 s and more) or the clients' 30-s read timeout; the
    #: instance then goes on alone at once. One more try after no answer (a dropped keep-alive
    #: connection: the clients send it at once), none after an answer such as 503; a budget blob
    #: is a round trip of milliseconds, so a read silent for 5 s is storage in trouble.
    REQUEST_OPTIONS: Final[Mapping[str, Any]] = {
        "retry_total": 1,
        "retry_status": 0,
        "connection_timeout": 3.0,
        "read_timeout": 5.0,
    }

    def __init__(self, *, container: ContainerClient, name: str) -> None:
        self._container = container
        self._name = name
        self._blob = container.get_blob_client(name)

    async def load(self) -> tuple[bytes | None, str | None, float | None]:
        try:
            downloader = await self._blob.download_blob(
                offset=0, length=self._MAX_BYTES, **self.REQUEST_OPTIONS
            )
            data = await downloader.readall()
        except ResourceNotFoundError as exc:
            headers = getattr(exc.response, "headers", None) or {}
            return None, None, _epoch(parse_http_date(headers.get("Date")))
        properties = downloader.properties
        return data, properties.etag, _epoch(properties.last_modified)

    async def swap(self, data: bytes, etag: str | None) -> tuple[str, float | None] | None:
        written = await swap_blob_written(
            self._container, self._name, data, etag=etag, options=self.REQUEST_OPTIONS
        )
        if written is None:
            return None
        return str(written["etag"]), _epoch(written.get("last_modified"))


def _epoch(value: object) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


class Permits(Protocol):
    """What the Language client and the worker ask of a request budget."""

    async def acquire(self, *, deadline: float | None = None, give_up_at: float | None = None) -> float:
        """Wait until one request may be sent; the seconds waited. ``BudgetBusy`` when that cannot
        be before ``give_up_at`` (event-loop time)."""
        ...

    async def throttled(self, retry_after: float | None) -> None:
        """The service answered 429."""
        ...

    def estimated_wait(self) -> float: ...

    def cycle_seconds(self) -> float: ...

    def jobs_changed(self, delta: int) -> None: ...

    def poll_late(self, seconds: float) -> None: ...

    async def set_pending(self, count: int) -> None: ...

    async def lateness(self) -> float:
        """How late a poll may come and still only wait its turn (seconds): the sweep adds it to
        its grace."""
        ...

    async def aclose(self) -> None: ...


class Unlimited:
    """No budget: every request goes at once (tools and tests that talk to the emulator alone)."""

    async def acquire(self, *, deadline: float | None = None, give_up_at: float | None = None) -> float:
        return 0.0

    async def throttled(self, retry_after: float | None) -> None:
        return None

    def estimated_wait(self) -> float:
        return 0.0

    def cycle_seconds(self) -> float:
        return 0.0

    def jobs_changed(self, delta: int) -> None:
        return None

    def poll_late(self, seconds: float) -> None:
        return None

    async def set_pending(self, count: int) -> None:
        return None

    async def lateness(self) -> float:
        return 0.0

    async def aclose(self) -> None:
        return None


class RequestBudget:
    """This instance's side of the shared budget: local tokens, the waiters, and the swaps."""

    def __init__(
        self,
        *,
        store: BudgetStore,
        limits: BudgetLimits,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self.limits = limits
        self._local_clock = clock
        self._sleep = sleep
        self._rand = rand
        #: Seconds added to the local clock to agree with the storage service's (see ``_clock``).
        self.clock_offset = 0.0
        self._state: BudgetState | None = None
        self._etag: str | None = None
        #: The batch held here (one ``Pacing``, whatever its size) and how many of it are spent.
        self._pacing: Pacing | None = None
        self._spent = 0
        #: The batch taken ahead, spent once the held one is done; the task taking it.
        self._next: Pacing | None = None
        self._refill: asyncio.Task[None] | None = None
        #: One compare-and-swap at a time from this instance (see the module docstring).
        self._swapping = asyncio.Lock()
        #: Moved by every 429: a batch taken before one is not spent after it.
        self._generation = 0
        self._paused_until = 0.0
        self._pending_delta = 0
        self._late = 0.0
        #: (deadline, order, waiting since, future): nearest deadline first, then first come.
        self._waiters: list[tuple[float, int, float, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    @property
    def state(self) -> BudgetState | None:
        """The shared state as this instance last saw it."""
        return self._state

    def _clock(self) -> float:
        """The budget's clock: the local one, corrected to the storage service's where it is off."""
        return self._local_clock() + self.clock_offset

    async def acquire(self, *, deadline: float | None = None, give_up_at: float | None = None) -> float:
        """Wait for one request's permit; the seconds waited. ``deadline`` (epoch seconds) ranks
        waiters; ``give_up_at`` (event-loop time) bounds the wait: ``BudgetBusy`` when the permit
        cannot come by then (at once when the pause or the queue ahead already says so).

        While the shared state cannot be read or written (storage down), the instance goes on alone
        at the last rate it knew."""
        started = self._clock()
        if not self._waiters and self._spend(started):
            return 0.0
        loop = asyncio.get_running_loop()
        if give_up_at is not None:
            expected = self._expected_wait(started)
            if loop.time() + expected > give_up_at:
                raise BudgetBusy(expected)
        future: asyncio.Future[None] = loop.create_future()
        rank = math.inf if deadline is None else deadline
        heapq.heappush(self._waiters, (rank, next(self._order), started, future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._serve(), name="request-budget")
        if give_up_at is None:
            await future
        else:
            try:
                async with asyncio.timeout_at(give_up_at):
                    await future
            except TimeoutError:
                # The future was cancelled with the wait: the serving loop skips it.
                raise BudgetBusy(self._expected_wait(self._clock())) from None
        return max(0.0, self._clock() - started)

    async def throttled(self, retry_after: float | None) -> None:
        """A 429: stop spending here at once, and pause every instance through the shared state."""
        now = self._clock()
        self._pacing = self._next = None
        self._generation += 1
        pause = retry_after if retry_after is not None and retry_after >= 0 else DEFAULT_PAUSE_SECONDS
        pause = min(pause, MAX_PAUSE_SECONDS)
        self._paused_until = max(self._paused_until, now + pause)
        try:
            async with self._swapping:
                await self._update(lambda state, at: throttle(self.limits, state, at, retry_after))
        except AzureError as exc:
            _log.warning("could not share a 429 with the other instances (%s); pausing here only", exc)

    def estimated_wait(self) -> float:
        """Roughly how long a new request would wait here: the pause, then the queue ahead of it."""
        return self._expected_wait(self._clock())

    def _expected_wait(self, now: float) -> float:
        """The pause left, then the time for the tokens that this request and the ones ahead of it
        need beyond those held here and those the shared bucket had when last seen (optimistic:
        other instances take from it too; ``give_up_at`` still bounds the wait)."""
        pause = max(0.0, self._paused_until - now)
        needed = len(self._waiters) + 1
        pacing, taken_ahead = self._pacing, self._next
        if pacing is not None and pacing.expires > now:
            needed -= pacing.tokens - self._spent
        if taken_ahead is not None and taken_ahead.expires > now:
            needed -= taken_ahead.tokens
        if needed <= 0:
            return pause
        state = self._state
        if state is None:  # not read yet: a batch may well be there
            return pause + max(0, needed - self.limits.batch) / self.limits.rate
        needed -= math.floor(advance(self.limits, state, now).tokens)
        return pause + max(0, needed) / effective_rate(self.limits, state)

    def cycle_seconds(self) -> float:
        """Seconds to poll every pending job once at the rate last seen (0 until known)."""
        return cycle_seconds(self.limits, self._state) if self._state else 0.0

    def jobs_changed(self, delta: int) -> None:
        """Jobs started (+) or ended (-) here; shared with the next take, at no extra cost."""
        self._pending_delta += delta

    def poll_late(self, seconds: float) -> None:
        """A poll started ``seconds`` after its recorded time; shared with the next take."""
        self._late = max(self._late, seconds)

    async def lateness(self) -> float:
        """How late a poll may come and still only be waiting its turn (one read: the sweep's
        instance may not poll): the lateness the shared state and this instance's waiters show,
        plus one cycle of the pending jobs at the budget. Polls go in turn, so one due a moment
        ago may come after every other pending job's, and a poll still on the queue has reported
        nothing yet."""
        async with self._swapping:
            loaded = await self._load()
        now = self._clock()
        state = advance(self.limits, loaded, now)
        return max(state.late, self._late_here(now)) + cycle_seconds(self.limits, state)

    async def aclose(self) -> None:
        """Stop serving (a process shutting down); requests still waiting are cancelled."""
        for task in (self._pump, self._refill):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for *_, future in self._waiters:
            future.cancel()
        self._waiters.clear()

    async def set_pending(self, count: int) -> None:
        """The sweep's exact count of pending jobs (it corrects the instances' running estimate)."""
        self._pending_delta = 0
        async with self._swapping:
            await self._update(lambda state, _: with_pending(state, exact=count))

    def _late_here(self, now: float) -> float:
        """How late this instance's polls are: the latest start reported, plus the longest wait now."""
        waiting = max((now - since for *_, since, future in self._waiters if not future.done()), default=0.0)
        return self._late + waiting

    def _spend(self, now: float) -> bool:
        pacing = self._held(now)
        if pacing is None:
            return False
        # Paced tokens a sleep's granularity early are as good as due (no pacing at high rates).
        if now < self._paused_until or pacing.usable_from(self._spent) > now + _MIN_SLEEP:
            return False
        self._spent += 1
        state = self._state
        if (
            self._next is None
            and (self._refill is None or self._refill.done())
            and state is not None
            and refill_due(self.limits, state, pacing, self._spent, now)
        ):
            self._refill = asyncio.create_task(self._take_ahead(), name="request-budget-ahead")
        return True

    def _held(self, now: float) -> Pacing | None:
        """The batch to spend from: the held one while it has tokens, then the one taken ahead.
        One spent or expired is dropped: spending it now could widen the window beyond the bound."""
        pacing = self._pacing
        if pacing is not None and self._spent < pacing.tokens and pacing.expires > now:
            return pacing
        taken_ahead, self._next = self._next, None
        if taken_ahead is not None and taken_ahead.expires > now:
            self._hold(taken_ahead)
            return taken_ahead
        self._pacing = None
        return None

    def _hold(self, pacing: Pacing) -> None:
        self._pacing, self._spent = pacing, 0

    async def _take_ahead(self) -> None:
        """Take the next batch while the held one still serves (``shared.budget.refill_due``)."""
        generation = self._generation
        try:
            async with self._swapping:
                state, granted = await self._take_batch()
        except AzureError as exc:
            # Nothing waits for this take: the waiting loop meets storage's trouble when it must.
            _log.debug("request budget: taking ahead failed (%s)", exc)
            return
        if state is None or not granted or generation != self._generation:
            return
        now, held = self._clock(), self._pacing
        self._next = paced(self.limits, state, now, granted, after=held.end if held is not None else None)

    async def _serve(self) -> None:
        """Hand out permits while anyone waits: local tokens first, then a take from the shared bucket."""
        while True:
            while self._waiters and self._waiters[0][-1].done():
                heapq.heappop(self._waiters)  # cancelled, or given up
            if not self._waiters:
                return
            now = self._clock()
            if self._spend(now):
                heapq.heappop(self._waiters)[-1].set_result(None)
                continue
            if now < self._paused_until:
                await self._sleep(self._paused_until - now + self._rand() * _SPREAD)
                continue
            if self._pacing is not None:
                await self._sleep(self._pacing.usable_from(self._spent) - now)  # the next paced token
                continue
            try:
                wake = await self._take()
            except AzureError as exc:
                # Storage down: the budget cannot be shared, but the Language resource is fine.
                # This instance goes on alone with one batch at the last rate it knew (held and
                # paced as usual), rather than stall or fail requests that need no storage.
                _log.warning("request budget: the shared state is unavailable (%s); going on alone", exc)
                known = self._state or BudgetState.initial(self.limits, now)
                self._hold(paced(self.limits, known, now, self.limits.batch))
                continue
            except Exception as exc:
                # A bug must not leave requests waiting for ever: they fail with it.
                self._fail_waiters(exc)
                raise
            if wake is not None:
                # Spread no wider than the wait: at a high budget the wait is milliseconds, and
                # a quarter second on top would hold every waiting request back for nothing.
                wait = max(_MIN_SLEEP, wake - self._clock())
                await self._sleep(wait + self._rand() * min(_SPREAD, wait))

    def _fail_waiters(self, exc: Exception) -> None:
        for *_, future in self._waiters:
            if not future.done():
                future.set_exception(exc)
        self._waiters.clear()

    async def _take(self) -> float | None:
        """One take for the waiters; ``None`` when tokens came, else when to try again."""
        async with self._swapping:
            now = self._clock()  # after the wait for the lock
            if self._held(now) is not None:
                return None  # a batch taken ahead came while this one waited for the lock
            return await self._take_now(now)

    async def _take_now(self, now: float) -> float | None:
        state = self._state
        if state is None:
            # Read before the first write: a new bucket starts empty, and its first take then waits
            # here for its tokens and creates the blob with them (one write, not create, wait, take).
            state, now = await self._load(), self._clock()
        # No storage round trip while the last state seen says the batch is not there yet:
        # other instances can only have taken tokens since, never added any.
        due = ready_at(self.limits, state, now, len(self._waiters))
        if due > now:
            return due
        state, granted = await self._take_batch()
        if state is None:
            return now + _STORAGE_RETRY_SECONDS * self._rand()
        if granted:
            self._hold(paced(self.limits, state, self._clock(), granted))
            return None
        if now < state.throttled_until:
            self._paused_until = max(self._paused_until, state.throttled_until)
        return ready_at(self.limits, state, self._clock(), len(self._waiters))

    async def _take_batch(self) -> tuple[BudgetState | None, int]:
        """Take a whole batch from the shared bucket (the caller holds ``_swapping``): the new state
        (``None`` when other writers won every round) and how many tokens came.

        A whole batch even for one waiter: the rest serve this instance's next requests (a job's
        pages, other jobs) for hold_seconds without another storage round trip."""
        granted = 0

        def step(state: BudgetState, at: float) -> BudgetState:
            nonlocal granted
            state, granted = take(self.limits, state, at, self.limits.batch)
            return state

        state = await self._update(step)
        return state, granted

    async def _load(self) -> BudgetState:
        """Read the shared state (checked: nonsense is reset with a WARNING) and the service's clock;
        the state, kept as the last seen."""
        sent = self._local_clock()
        data, etag, server = await self._store.load()
        # A read's Last-Modified is when the blob was last written: the service's time now is
        # later, so it only shows a clock running behind. With no blob, the answer's Date is the
        # service's time during the read, as a write's Last-Modified is: both directions, so even
        # the write that creates the blob carries the service's time.
        self._correct_clock(sent, server, written=data is None)
        now = self._clock()
        # No blob (or nonsense in it): a new, empty bucket from now, written by the next swap (with
        # If-None-Match: * when there is no blob, so that only one instance's new bucket wins).
        self._etag, self._state = etag, BudgetState.initial(self.limits, now)
        if data is not None:
            try:
                self._state = state_from_json(self.limits, data, now)
            except ValueError as exc:
                _log.warning("the request budget's blob is unusable (%s): starting it afresh", exc)
        return self._state

    def _correct_clock(self, sent: float, server: float | None, *, written: bool = True) -> None:
        if server is None:
            return
        offset = clock_correction(
            self.clock_offset, sent=sent, received=self._local_clock(), server=server, written=written
        )
        if abs(offset - self.clock_offset) > 1.0:
            _log.warning(
                "this instance's clock is %+.0f s off the storage service's: the request budget uses the "
                "service's time (check the host's time synchronisation)",
                -offset,
            )
        self.clock_offset = offset

    async def _update(self, change: Callable[[BudgetState, float], BudgetState]) -> BudgetState | None:
        """Apply ``change`` to the shared state by compare-and-swap (reading only after a conflict);
        ``None`` when other writers won every round (the caller tries again later)."""
        for _ in range(_MAX_SWAPS):
            base = self._state if self._state is not None else await self._load()
            now = self._clock()
            shared = with_lateness(with_pending(base, delta=self._pending_delta), self._late_here(now))
            new = change(shared, now)
            sent = self._local_clock()
            written = await self._store.swap(state_to_json(new), self._etag)
            if written is not None:
                self._correct_clock(sent, written[1])
                # ``new`` was made on the clock before this correction: pull it onto the new one.
                new = clamped(new, self._clock())
                self._state, self._etag, self._pending_delta, self._late = new, written[0], 0, 0.0
                return new
            self._state = None  # someone else wrote: read theirs and apply the change to it
        return None
