"""A local stand-in for the Functions host: the queue listener and the timer, driven by ``host.json``.

The host cannot be installed here, so ``make demo`` and the integration and chaos tests run the app's
functions through ``QueueRunner`` against Azurite. It keeps the host's delivery semantics: batches of
``batchSize`` leased messages, a new batch when in-flight work drops to ``newBatchThreshold``, the
message deleted on success, made visible again after ``visibilityTimeout`` on failure, and moved to
``<queue>-poison`` once ``maxDequeueCount`` deliveries have failed; empty polls back off up to
``maxPollingInterval``. Timer functions fire at their NCRONTAB occurrences in UTC. The pieces live
beside this module (``dispatch``, ``leases``, ``poison``, ``timers``); this one starts and stops them.

Typical use::

    async with QueueRunner(app=app, connection_string=cs, environ=os.environ) as runner:
        await runner.drain(timeout=60)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import azure.functions as func
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.queue.aio import QueueServiceClient

from local.host.dispatch import Dispatcher
from local.host.functions import discover
from local.host.invocations import Invocations, RunnerStats, cancel
from local.host.leases import LEASE_SECONDS, Leases
from local.host.poison import create_queue
from local.host.settings import HOST_JSON, HostQueueSettings
from local.host.timers import Timers

__all__ = ["QueueRunner"]

# How often run_until checks its predicate and whether a loop died.
_CHECK_SECONDS = 0.05
# How long a stopping poll loop may take to finish its current receive before it is cancelled.
_STOP_GRACE_SECONDS = 5.0


class QueueRunner:
    """Runs an app's queue-triggered and timer-triggered functions the way the Functions host does.

    The loops run only inside ``run_until``/``drain``; between calls the runner is idle and holds no
    message. Several runners may share a queue and an event loop.
    """

    def __init__(
        self,
        *,
        app: func.FunctionApp,
        connection_string: str,
        environ: Mapping[str, str],
        host_json: Path = HOST_JSON,
        poll_interval: float | None = None,
        timer: bool = True,
        name: str = "runner",
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self.name = name
        # Shorter than the host's 10 minutes in crash tests, so a dead worker's messages return soon.
        self._leases = Leases(seconds=lease_seconds, name=name)
        self.settings = HostQueueSettings.from_host_json(host_json)
        self._queue_functions, self._timer_functions = discover(app, environ)
        self._timer = timer
        self.stats = RunnerStats()
        # Queue clients made from one service client share its transport (one aiohttp session). The
        # host's queue client does not read proxy settings or ~/.netrc: without use_env_settings=False,
        # aiohttp would read both on every request (a thread hop each), cost the real host never pays.
        self._service = QueueServiceClient.from_connection_string(
            connection_string, transport=AioHttpTransport(use_env_settings=False)
        )
        self._invocations = Invocations(name)
        self._dispatcher = Dispatcher(
            name=name,
            service=self._service,
            settings=self.settings,
            leases=self._leases,
            invocations=self._invocations,
            stats=self.stats,
            # poll_interval stands in for maxPollingInterval, e.g. to keep tests snappy.
            max_poll=(
                poll_interval
                if poll_interval is not None
                else self.settings.max_polling_interval.total_seconds()
            ),
        )
        self._timers = Timers(name=name, invocations=self._invocations, stats=self.stats)
        self._queues_ready = False
        self._timers_started = False
        self._running = False
        self._closed = False

    @property
    def queue_names(self) -> tuple[str, ...]:
        """The resolved names of the queues this runner listens on."""
        return tuple(fn.queue_name for fn in self._queue_functions)

    @property
    def in_flight(self) -> int:
        """Invocations in progress (queue and timer)."""
        return len(self._invocations)

    # The deadline bounds the graceful stop too, which asyncio.timeout around the call could not.
    async def run_until(
        self,
        predicate: Callable[[], Awaitable[bool] | bool] | None = None,
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Run the loops until ``predicate()`` is true (checked every few ms), then let in-flight work finish.

        Without a predicate, run for ``timeout`` seconds. TimeoutError when the predicate is still false
        or work is still in flight at the deadline; invocations still running are then cancelled and
        their messages made visible again at once, as when the host shuts down.
        """
        if self._closed:
            raise RuntimeError(f"{self.name}: run_until after aclose()")
        if self._running:
            raise RuntimeError(f"{self.name}: run_until is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        stop = asyncio.Event()
        loops: list[asyncio.Task[None]] = []
        try:
            await self._ensure_queues()
            loops += [
                asyncio.create_task(self._dispatcher.listen(fn, stop), name=f"{self.name}:{fn.name}")
                for fn in self._queue_functions
            ]
            if self._timer:
                run_on_startup = not self._timers_started
                self._timers_started = True
                loops += [
                    asyncio.create_task(
                        self._timers.run(fn, stop, run_on_startup=run_on_startup),
                        name=f"{self.name}:{fn.name}",
                    )
                    for fn in self._timer_functions
                ]
            while predicate is None or not await _holds(predicate):
                self._raise_if_broken(loops)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if predicate is None:
                        return  # time is up: the finally clause shuts down like the host
                    raise TimeoutError(
                        f"{self.name}: condition not met within {timeout:g} s "
                        f"({self.in_flight} invocations in flight, {self.stats})"
                    )
                if loops:  # they only end by failing, so waiting on them wakes us early for that
                    await asyncio.wait(loops, timeout=min(_CHECK_SECONDS, remaining))
                else:
                    await asyncio.sleep(min(_CHECK_SECONDS, remaining))
            stop.set()
            # Loops first: one may still spawn the invocations of a batch it was receiving.
            if loops:
                await asyncio.wait(loops, timeout=max(0.0, deadline - loop.time()))
            if invocations := self._invocations.tasks():
                await asyncio.wait(invocations, timeout=max(0.0, deadline - loop.time()))
            self._raise_if_broken(loops)
            busy = [task.get_name() for task in [*loops, *self._invocations.tasks()] if not task.done()]
            if busy:
                raise TimeoutError(f"{self.name}: still busy {timeout:g} s after start: {busy}")
        finally:
            stop.set()
            # After a graceful stop this only hands back a batch received while stopping.
            await self._shut_down(loops)
            self._running = False

    async def drain(self, *, timeout: float, settle: float = 0.3) -> None:  # noqa: ASYNC109 - see run_until
        """Run until the queues are empty (visible or not) and nothing is in flight for ``settle`` s."""
        loop = asyncio.get_running_loop()
        quiet_since: float | None = None

        async def drained() -> bool:
            nonlocal quiet_since
            if self.in_flight or any([await self._message_count(name) for name in self.queue_names]):
                quiet_since = None
                return False
            if quiet_since is None:
                quiet_since = loop.time()
            return loop.time() - quiet_since >= settle

        await self.run_until(drained, timeout=timeout)

    async def fire_timer(self, function_name: str | None = None) -> bool:
        """Invoke a timer function now, not past due; True if it succeeded (a failure is logged)."""
        names = [fn.name for fn in self._timer_functions]
        if function_name is None:
            if len(self._timer_functions) != 1:
                raise ValueError(f"{self.name}: name one of the timer functions {names}")
            (fn,) = self._timer_functions
        else:
            matches = [fn for fn in self._timer_functions if fn.name == function_name]
            if not matches:
                raise ValueError(f"{self.name}: no timer function {function_name!r} in {names}")
            (fn,) = matches
        return await self._timers.fire(fn, past_due=False)

    async def aclose(self) -> None:
        """Close the storage clients; idempotent."""
        if self._running:
            raise RuntimeError(f"{self.name}: aclose() while run_until is running; stop or cancel it first")
        if not self._closed:
            self._closed = True
            await self._service.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _ensure_queues(self) -> None:
        if not self._queues_ready:
            for name in self.queue_names:
                await create_queue(self._service.get_queue_client(name))
            self._queues_ready = True

    async def _message_count(self, queue_name: str) -> int:
        properties = await self._service.get_queue_client(queue_name).get_queue_properties()
        return int(properties.approximate_message_count or 0)

    def _raise_if_broken(self, loops: list[asyncio.Task[None]]) -> None:
        self._invocations.raise_crash()
        for task in loops:
            if task.done() and not task.cancelled():
                task.result()  # a loop only ends early by raising

    async def _shut_down(self, loops: list[asyncio.Task[None]]) -> None:
        """Stop as the host does: cancel invocations still running, hand unsettled messages back."""
        await self._invocations.cancel_all()
        # A poll loop in the middle of a receive must finish it, or the batch it leased would be lost
        # until the lease expires; a loop stuck past the grace period is cancelled all the same.
        if loops:
            _, stuck = await asyncio.wait(loops, timeout=_STOP_GRACE_SECONDS)
            await cancel(stuck)
        await self._leases.release_all()


async def _holds(predicate: Callable[[], Awaitable[bool] | bool]) -> bool:
    result = predicate()
    return bool(await result) if inspect.isawaitable(result) else bool(result)
