"""Invocations as the Python worker runs them, tracked as tasks, counted, and the waits the loops share."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Invocations", "RunnerStats", "being_cancelled", "cancel", "first_of", "invoke", "sleep_unless"]

logger = logging.getLogger(__name__)


@dataclass
class RunnerStats:
    """Counters since the runner was built; queue and timer invocations are counted apart."""

    invoked: int = 0
    succeeded: int = 0
    failed: int = 0
    poisoned: int = 0
    timer_fired: int = 0
    timer_failed: int = 0
    #: The longest queue invocation so far, in seconds (the throttle bench reports it).
    longest: float = 0.0


async def invoke(call: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Call a function as the Python worker does: async ones on its loop, sync ones on a thread pool."""
    result = call(**kwargs) if inspect.iscoroutinefunction(call) else await asyncio.to_thread(call, **kwargs)
    if inspect.isawaitable(result):
        await result


class Invocations:
    """The invocations in flight (queue and timer), each a task, so that stopping can wait for them or
    cancel them. They catch the function's own errors, so one that raises is a bug in the runner: the
    first such crash is kept for ``raise_crash``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[object]] = set()
        self._crash: BaseException | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    def tasks(self) -> list[asyncio.Task[object]]:
        """The tasks in flight now."""
        return list(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, object], name: str) -> asyncio.Task[object]:
        task = asyncio.create_task(work, name=f"{self._name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def raise_crash(self) -> None:
        """Raise (once) the first crash since the last call."""
        if self._crash is not None:
            crash, self._crash = self._crash, None
            raise crash

    async def cancel_all(self) -> None:
        await cancel(self._tasks)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("[%s] %s crashed: %s: %s", self._name, task.get_name(), type(error).__name__, error)
            self._crash = self._crash or error


async def cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until every one has ended."""
    doomed = list(tasks)
    for task in doomed:
        task.cancel()
    if doomed:
        await asyncio.wait(doomed)


def being_cancelled() -> bool:
    """Whether the current task is being cancelled from outside (the runner stopping)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def first_of(*events: asyncio.Event) -> None:
    """Wait until any of the events is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
