"""The timer trigger's schedule (past due, missed occurrences) and its firings, one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest
from hypothesis import given
from hypothesis import strategies as st

from local.host.functions import TimerFunction
from local.host.invocations import Invocations, RunnerStats
from local.host.ncrontab import NCrontab
from local.host.timers import PAST_DUE, Timers, is_past_due, next_due

EVERY_FIVE_MINUTES = NCrontab.parse("0 */5 * * * *")
DUE = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def test_a_firing_within_the_grace_after_its_occurrence_is_on_time() -> None:
    assert not is_past_due(DUE, DUE + PAST_DUE)


def test_a_firing_later_than_the_grace_after_its_occurrence_is_past_due() -> None:
    assert is_past_due(DUE, DUE + PAST_DUE + timedelta(milliseconds=1))


def test_after_an_on_time_firing_the_next_occurrence_follows_the_one_fired() -> None:
    # The firing ran 7 minutes: the occurrence at 12:05 is still owed, and fires (past due) at once.
    assert next_due(
        EVERY_FIVE_MINUTES, due=DUE, past_due=False, now=DUE + timedelta(minutes=7)
    ) == DUE + timedelta(minutes=5)


def test_after_a_past_due_firing_the_missed_occurrences_are_skipped() -> None:
    now = DUE + timedelta(minutes=17)
    assert next_due(EVERY_FIVE_MINUTES, due=DUE, past_due=True, now=now) == DUE + timedelta(minutes=20)


@given(
    late=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
    past_due=st.booleans(),
)
def test_the_next_occurrence_is_after_the_one_fired_and_after_now_when_past_due(
    late: timedelta, past_due: bool
) -> None:
    now = DUE + late
    upcoming = next_due(EVERY_FIVE_MINUTES, due=DUE, past_due=past_due, now=now)
    assert upcoming > DUE
    assert upcoming <= (now if past_due else DUE) + timedelta(minutes=5)
    if past_due:
        assert upcoming > now


def timer_function(call: Callable[[TimerRequest], Awaitable[None]]) -> TimerFunction:
    return TimerFunction("sweep", "timer", EVERY_FIVE_MINUTES, run_on_startup=False, call=call)


async def test_fire_passes_past_due_and_counts_a_success() -> None:
    seen: list[bool] = []

    async def sweep(timer: TimerRequest) -> None:
        seen.append(timer.past_due)

    stats = RunnerStats()
    timers = Timers(name="t", invocations=Invocations("t"), stats=stats)

    assert await timers.fire(timer_function(sweep), past_due=True)
    assert seen == [True]
    assert (stats.timer_fired, stats.timer_failed) == (1, 0)


async def test_fire_reports_and_counts_a_failure() -> None:
    async def sweep(timer: TimerRequest) -> None:
        raise RuntimeError("boom")

    stats = RunnerStats()
    timers = Timers(name="t", invocations=Invocations("t"), stats=stats)

    assert not await timers.fire(timer_function(sweep), past_due=False)
    assert (stats.timer_fired, stats.timer_failed) == (1, 1)


async def test_firings_of_a_timer_never_overlap() -> None:
    running, most = 0, 0

    async def sweep(timer: TimerRequest) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1

    timers = Timers(name="t", invocations=Invocations("t"), stats=RunnerStats())
    fn = timer_function(sweep)

    assert all(await asyncio.gather(*(timers.fire(fn, past_due=False) for _ in range(3))))
    assert most == 1


def late_clock() -> Callable[[], datetime]:
    """A clock at DUE when the run starts, then 7 minutes later: the occurrence at 12:05 is overdue."""
    readings = iter([DUE])
    return lambda: next(readings, DUE + timedelta(minutes=7))


def stopping(fired: list[bool], stop: asyncio.Event) -> Callable[[TimerRequest], Awaitable[None]]:
    async def tick(timer: TimerRequest) -> None:
        fired.append(timer.past_due)
        stop.set()

    return tick


async def test_a_run_late_for_its_occurrence_fires_at_once_past_due() -> None:
    fired: list[bool] = []
    stop = asyncio.Event()
    invocations = Invocations("t")
    timers = Timers(name="t", invocations=invocations, stats=RunnerStats(), clock=late_clock())
    fn = TimerFunction("tick", "timer", EVERY_FIVE_MINUTES, run_on_startup=False, call=stopping(fired, stop))

    await asyncio.wait_for(timers.run(fn, stop, run_on_startup=True), timeout=30)

    assert fired == [True]
    assert len(invocations) == 0


async def test_a_run_on_startup_fires_at_once_on_time() -> None:
    fired: list[bool] = []
    stop = asyncio.Event()
    timers = Timers(name="t", invocations=Invocations("t"), stats=RunnerStats(), clock=lambda: DUE)
    fn = TimerFunction("tick", "timer", EVERY_FIVE_MINUTES, run_on_startup=True, call=stopping(fired, stop))

    await asyncio.wait_for(timers.run(fn, stop, run_on_startup=True), timeout=30)

    assert fired == [False]
