"""The timer trigger: each timer function fired at its NCRONTAB occurrences in UTC, never overlapping,
with the missed occurrences of a late or busy timer collapsed into one past-due firing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest

from local.host.functions import TimerFunction
from local.host.invocations import Invocations, RunnerStats, invoke, sleep_unless
from local.host.ncrontab import NCrontab

__all__ = ["PAST_DUE", "Timers", "is_past_due", "next_due"]

logger = logging.getLogger(__name__)

# A timer firing later than this after its occurrence is past due, as the host reports it.
PAST_DUE = timedelta(seconds=1)


def is_past_due(due: datetime, now: datetime) -> bool:
    """Whether a firing at ``now`` for the occurrence ``due`` is past due."""
    return now - due > PAST_DUE


def next_due(schedule: NCrontab, *, due: datetime, past_due: bool, now: datetime) -> datetime:
    """The occurrence to wait for once ``due`` has fired: the next after it when it fired on time (even
    if the firing ran long); the next after ``now`` when it fired past due, so that the occurrences
    missed meanwhile collapse into that one firing."""
    return schedule.next_after(now if past_due else due)


class Timers:
    """Fires timer functions as tracked invocations, one at a time (the host never overlaps them)."""

    def __init__(
        self,
        *,
        name: str,
        invocations: Invocations,
        stats: RunnerStats,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._name = name
        self._invocations = invocations
        self._stats = stats
        self._clock = clock
        self._lock = asyncio.Lock()

    async def run(self, fn: TimerFunction, stop: asyncio.Event, *, run_on_startup: bool) -> None:
        """Fire ``fn`` at each occurrence until ``stop`` (first at once if it runs on startup)."""
        if run_on_startup and fn.run_on_startup:
            await self._fire_tracked(fn, past_due=False)
        due = fn.schedule.next_after(self._clock())
        while not stop.is_set():
            await sleep_unless(stop, (due - self._clock()).total_seconds())
            if stop.is_set():
                break
            past_due = is_past_due(due, self._clock())
            await self._fire_tracked(fn, past_due=past_due)
            due = next_due(fn.schedule, due=due, past_due=past_due, now=self._clock())

    async def fire(self, fn: TimerFunction, *, past_due: bool) -> bool:
        """Invoke ``fn`` once; True if it succeeded (a failure is logged and counted)."""
        async with self._lock:
            self._stats.timer_fired += 1
            try:
                await invoke(fn.call, {fn.arg_name: TimerRequest(past_due=past_due)})
            except Exception as error:
                self._stats.timer_failed += 1
                logger.error("[%s] timer %s failed: %s: %s", self._name, fn.name, type(error).__name__, error)
                logger.debug("[%s] traceback of timer %s", self._name, fn.name, exc_info=error)
                return False
            return True

    async def _fire_tracked(self, fn: TimerFunction, *, past_due: bool) -> None:
        # A task of its own, so that stopping the runner waits for it (or cancels it) like queue work.
        await asyncio.wait([self._invocations.spawn(self.fire(fn, past_due=past_due), fn.name)])
