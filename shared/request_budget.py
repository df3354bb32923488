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

A batch is spent at the app's rate, not all at once (``shared.budget.paced``): when the service
answers 429 the instance has sent one or two of its batch into the refusal, not ten.

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
import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Final, Protocol

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
    advance,
    cycle_seconds,
    effective_rate,
    paced,
    ready_at,
    take,
    throttle,
    with_lateness,
    with_pending,
)
from .storage import swap_blob

__all__ = [
    "HOST_CONTAINER",
    "BlobBudgetStore",
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


class BudgetStore(Protocol):
    """Where the shared state lives: read it, and swap it if nobody wrote since ``etag``."""

    async def load(self) -> tuple[BudgetState | None, str | None]: ...

    async def swap(self, state: BudgetState, etag: str | None) -> str | None:
        """The new ETag, or ``None`` when another writer got there first (``etag`` None: create)."""
        ...


def budget_blob(archive_container: str) -> str:
    """The budget's blob name in ``HOST_CONTAINER``: one budget per archiver, as each has its setting."""
    return f"archiver/{archive_container}/language-requests.json"


class BlobBudgetStore:
    """The state as a small JSON blob, written with If-Match (or If-None-Match: * to create)."""

    def __init__(self, *, container: ContainerClient, name: str) -> None:
        self._container = container
        self._name = name
        self._blob = container.get_blob_client(name)

    async def load(self) -> tuple[BudgetState | None, str | None]:
        try:
            downloader = await self._blob.download_blob()
            data = await downloader.readall()
        except ResourceNotFoundError:
            return None, None
        try:
            state = BudgetState(**{k: float(v) for k, v in json.loads(data).items()})
        except (ValueError, TypeError, AttributeError):
            _log.warning("the request budget's blob is unreadable: starting it afresh")
            state = None
        return state, downloader.properties.etag

    async def swap(self, state: BudgetState, etag: str | None) -> str | None:
        data = json.dumps(asdict(state), separators=(",", ":")).encode()
        return await swap_blob(self._container, self._name, data, etag=etag)


class Permits(Protocol):
    """What the Language client and the worker ask of a request budget."""

    async def acquire(self, *, deadline: float | None = None) -> float:
        """Wait until one request may be sent; the seconds waited."""
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
        """How late the app's polls come lately (seconds): the sweep adds it to its grace."""
        ...

    async def aclose(self) -> None: ...


class Unlimited:
    """No budget: every request goes at once (tools and tests that talk to the emulator alone)."""

    async def acquire(self, *, deadline: float | None = None) -> float:
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
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._state: BudgetState | None = None
        self._etag: str | None = None
        #: The tokens held here: (usable from, expires at), in order.
        self._tokens: deque[tuple[float, float]] = deque()
        self._paused_until = 0.0
        self._pending_delta = 0
        self._late = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    @property
    def state(self) -> BudgetState | None:
        """The shared state as this instance last saw it."""
        return self._state

    async def acquire(self, *, deadline: float | None = None) -> float:
        """Wait for one request's permit; the seconds waited. ``deadline`` (epoch seconds) ranks waiters.

        While the shared state cannot be read or written (storage down), the instance goes on alone
        at the last rate it knew."""
        started = self._clock()
        if not self._waiters and self._spend(started):
            return 0.0
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (math.inf if deadline is None else deadline, next(self._order), future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._serve(), name="request-budget")
        try:
            await future
        except asyncio.CancelledError:
            # The waiter is skipped by the loop (its future is done); a permit handed to it is lost.
            raise
        return max(0.0, self._clock() - started)

    async def throttled(self, retry_after: float | None) -> None:
        """A 429: stop spending here at once, and slow every instance through the shared state."""
        now = self._clock()
        self._tokens.clear()
        pause = retry_after if retry_after is not None and retry_after >= 0 else DEFAULT_PAUSE_SECONDS
        pause = min(pause, MAX_PAUSE_SECONDS)
        self._paused_until = max(self._paused_until, now + pause)
        try:
            await self._update(lambda state, at: throttle(self.limits, state, at, retry_after))
        except AzureError as exc:
            _log.warning("could not share a 429 with the other instances (%s); pausing here only", exc)

    def estimated_wait(self) -> float:
        """Roughly how long a new request would wait here: the queue ahead of it at the current rate."""
        if not self._waiters:
            return 0.0
        rate = effective_rate(self.limits, self._state) if self._state else self.limits.rate
        now = self._clock()
        return max(0.0, self._paused_until - now) + len(self._waiters) / rate

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
        """The app's lateness as the shared state says now (one read: the sweep's instance may not poll)."""
        self._state, self._etag = await self._store.load()
        return advance(self.limits, self._state, self._clock()).late if self._state else 0.0

    async def aclose(self) -> None:
        """Stop serving (a process shutting down); requests still waiting are cancelled."""
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        for _, _, future in self._waiters:
            future.cancel()
        self._waiters.clear()

    async def set_pending(self, count: int) -> None:
        """The sweep's exact count of pending jobs (it corrects the instances' running estimate)."""
        self._pending_delta = 0
        await self._update(lambda state, _: with_pending(state, exact=count))

    def _spend(self, now: float) -> bool:
        while self._tokens and self._tokens[0][1] <= now:
            self._tokens.popleft()  # expired: spending it now could widen the window beyond the bound
        # Paced tokens a sleep's granularity early are as good as due (no pacing at high rates).
        if now < self._paused_until or not self._tokens or self._tokens[0][0] > now + _MIN_SLEEP:
            return False
        self._tokens.popleft()
        return True

    async def _serve(self) -> None:
        """Hand out permits while anyone waits: local tokens first, then a take from the shared bucket."""
        while True:
            while self._waiters and self._waiters[0][2].done():
                heapq.heappop(self._waiters)  # cancelled
            if not self._waiters:
                return
            now = self._clock()
            if self._spend(now):
                heapq.heappop(self._waiters)[2].set_result(None)
                continue
            if now < self._paused_until:
                await self._sleep(self._paused_until - now + self._rand() * _SPREAD)
                continue
            if self._tokens:
                await self._sleep(self._tokens[0][0] - now)  # the next paced token
                continue
            try:
                wake = await self._take(now)
            except AzureError as exc:
                # Storage down: the budget cannot be shared, but the Language resource is fine.
                # This instance goes on alone with one batch at the last rate it knew (held and
                # paced as usual), rather than stall or fail requests that need no storage.
                _log.warning("request budget: the shared state is unavailable (%s); going on alone", exc)
                known = self._state or BudgetState.initial(self.limits, now)
                self._tokens.extend(paced(self.limits, known, now, self.limits.batch))
                continue
            except Exception as exc:
                # A bug must not leave requests waiting for ever: they fail with it.
                self._fail_waiters(exc)
                raise
            if wake is not None:
                await self._sleep(max(_MIN_SLEEP, wake - self._clock()) + self._rand() * _SPREAD)

    def _fail_waiters(self, exc: Exception) -> None:
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(exc)
        self._waiters.clear()

    async def _take(self, now: float) -> float | None:
        """One take for the waiters; ``None`` when tokens came, else when to try again."""
        if self._state is not None:
            # No storage round trip while the last state seen says the batch is not there yet:
            # other instances can only have taken tokens since, never added any.
            due = ready_at(self.limits, self._state, now, len(self._waiters))
            if due > now:
                return due
        granted = 0

        def step(state: BudgetState, at: float) -> BudgetState:
            nonlocal granted
            # A whole batch even for one waiter: the rest serve this instance's next requests
            # (a job's pages, other jobs) for hold_seconds without another storage round trip.
            state, granted = take(self.limits, state, at, self.limits.batch)
            return state

        state = await self._update(step)
        if state is None:
            return now + _STORAGE_RETRY_SECONDS * self._rand()
        if granted:
            self._tokens.extend(paced(self.limits, state, self._clock(), granted))
            return None
        if now < state.throttled_until:
            self._paused_until = max(self._paused_until, state.throttled_until)
        return ready_at(self.limits, state, self._clock(), len(self._waiters))

    async def _update(self, change: Callable[[BudgetState, float], BudgetState]) -> BudgetState | None:
        """Apply ``change`` to the shared state by compare-and-swap (reading only after a conflict);
        ``None`` when other writers won every round (the caller tries again later)."""
        for _ in range(_MAX_SWAPS):
            if self._state is None:
                self._state, self._etag = await self._store.load()
            now = self._clock()
            base = self._state or BudgetState.initial(self.limits, now)
            shared = with_lateness(with_pending(base, delta=self._pending_delta), self._late)
            new = change(shared, now)
            etag = await self._store.swap(new, self._etag)
            if etag is not None:
                self._state, self._etag, self._pending_delta, self._late = new, etag, 0, 0.0
                return new
            self._state = None  # someone else wrote: read theirs and apply the change to it
        return None
