"""A local stand-in for the Functions host: the queue listener and the timer, driven by ``host.json``.

The host cannot be installed here, so ``make demo`` and the integration and chaos tests run the app's
functions through ``QueueRunner`` against Azurite. It keeps the host's delivery semantics: batches of
``batchSize`` leased messages, a new batch when in-flight work drops to ``newBatchThreshold``, the
message deleted on success, made visible again after ``visibilityTimeout`` on failure, and moved to
``<queue>-poison`` once ``maxDequeueCount`` deliveries have failed; empty polls back off up to
``maxPollingInterval``. Timer functions fire at their NCRONTAB occurrences in UTC.

Typical use::

    async with QueueRunner(app=app, connection_string=cs, environ=os.environ) as runner:
        await runner.drain(timeout=60)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import logging
import random
import re
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.functions.decorators.function_app import Function
from azure.functions.decorators.queue import QueueTrigger
from azure.functions.decorators.timer import TimerTrigger
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueMessage as StorageMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from local.ncrontab import NCrontab

__all__ = ["HOST_JSON", "HostQueueSettings", "QueueRunner", "RunnerStats", "functions_of", "parse_timespan"]

logger = logging.getLogger(__name__)

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
# The host leases each message for 10 minutes and renews the lease at half that while its function
# runs; a message leased by a process that died comes back when the lease runs out.
_LEASE_SECONDS = 600
# The host's empty-queue backoff starts at 100 ms and doubles, randomised, up to maxPollingInterval.
_MIN_POLL_SECONDS = 0.1
_POLL_JITTER = 0.2
# How often run_until checks its predicate and whether a loop died.
_CHECK_SECONDS = 0.05
# How long a stopping poll loop may take to finish its current receive before it is cancelled.
_STOP_GRACE_SECONDS = 5.0
# A timer firing later than this after its occurrence is past due, as the host reports it.
_PAST_DUE = timedelta(seconds=1)

_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<frac>\d{1,7}))?$"
)
_SETTING_REFERENCE = re.compile(r"%([^%]+)%")

# FunctionApp.get_functions() registers the functions' names on the app, so a second call on the same
# app raises; every runner built on one app shares this one list. Weak keys let apps be collected.
_FUNCTIONS: weakref.WeakKeyDictionary[func.FunctionApp, tuple[Function, ...]] = weakref.WeakKeyDictionary()


def functions_of(app: func.FunctionApp) -> tuple[Function, ...]:
    """``app.get_functions()``, called once per app; use this instead of calling it directly."""
    functions = _FUNCTIONS.get(app)
    if functions is None:
        if app.functions_bindings:
            raise RuntimeError(
                "app.get_functions() was already called on this FunctionApp outside local.runner; a second "
                "call fails, so index it through local.runner.functions_of(app) everywhere"
            )
        functions = tuple(app.get_functions())
        _FUNCTIONS[app] = functions
    return functions


def parse_timespan(text: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it: ``[d.]hh:mm:ss[.fffffff]``."""
    match = _TIMESPAN.match(text)
    if match is None:
        raise ValueError(f"timespan {text!r} is not [d.]hh:mm:ss[.fffffff]")
    minutes, seconds = int(match["m"]), int(match["s"])
    if minutes > 59 or seconds > 59:
        raise ValueError(f"timespan {text!r}: minutes and seconds must be below 60")
    return timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=minutes,
        seconds=seconds,
        microseconds=int((match["frac"] or "0").ljust(7, "0")) // 10,
    )


@dataclass(frozen=True)
class HostQueueSettings:
    """``extensions.queues`` of host.json, with the host's defaults for what it leaves out."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: Literal["base64", "none"] = "base64"

    @classmethod
    def from_host_json(cls, path: Path) -> HostQueueSettings:
        """Read and validate the settings; a bad one is a ValueError naming the file and the setting."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            queues = document.get("extensions", {}).get("queues", {})
            batch_size = int(queues.get("batchSize", cls.batch_size))
            settings = cls(
                batch_size=batch_size,
                # The host's default threshold is half the batch size.
                new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
                max_dequeue_count=int(queues.get("maxDequeueCount", cls.max_dequeue_count)),
                visibility_timeout=parse_timespan(queues.get("visibilityTimeout", "00:00:00")),
                max_polling_interval=parse_timespan(queues.get("maxPollingInterval", "00:01:00")),
                message_encoding=_encoding(queues.get("messageEncoding", "base64")),
            )
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: extensions.queues: {error}") from error
        for name, value, low, high in (
            ("batchSize", settings.batch_size, 1, 32),
            ("newBatchThreshold", settings.new_batch_threshold, 0, 1000),
            ("maxDequeueCount", settings.max_dequeue_count, 1, 1000),
        ):
            if not low <= value <= high:
                raise ValueError(f"{path}: extensions.queues.{name} = {value} is outside {low}-{high}")
        if settings.max_polling_interval < timedelta(milliseconds=100):
            raise ValueError(f"{path}: extensions.queues.maxPollingInterval must be at least 00:00:00.1")
        return settings


def _encoding(value: object) -> Literal["base64", "none"]:
    text = str(value).lower()
    if text == "base64":
        return "base64"
    if text == "none":
        return "none"
    raise ValueError(f"messageEncoding {value!r} is neither 'base64' nor 'none'")


@dataclass
class RunnerStats:
    """Counters since the runner was built; queue and timer invocations are counted apart."""

    invoked: int = 0
    succeeded: int = 0
    failed: int = 0
    poisoned: int = 0
    timer_fired: int = 0
    timer_failed: int = 0


@dataclass(frozen=True)
class _QueueFunction:
    name: str
    arg_name: str
    queue_name: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class _TimerFunction:
    name: str
    arg_name: str
    schedule: NCrontab
    run_on_startup: bool
    call: Callable[..., Any]


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
        lease_seconds: int = _LEASE_SECONDS,
    ) -> None:
        if lease_seconds < 1:
            raise ValueError(f"lease_seconds must be at least 1, got {lease_seconds}")
        self.name = name
        # Shorter than the host's 10 minutes in crash tests, so a dead worker's messages return soon.
        self._lease = lease_seconds
        self.settings = HostQueueSettings.from_host_json(host_json)
        # poll_interval stands in for maxPollingInterval, e.g. to keep tests snappy.
        self._max_poll = (
            poll_interval if poll_interval is not None else self.settings.max_polling_interval.total_seconds()
        )
        self._queue_functions, self._timer_functions = _discover(app, environ)
        self._timer = timer
        self.stats = RunnerStats()
        # Queue clients made from one service client share its transport (one aiohttp session). The
        # host's queue client does not read proxy settings or ~/.netrc: without use_env_settings=False,
        # aiohttp would read both on every request (a thread hop each), cost the real host never pays.
        self._service = QueueServiceClient.from_connection_string(
            connection_string, transport=AioHttpTransport(use_env_settings=False)
        )
        self._queues_ready = False
        self._timers_started = False
        self._timer_lock = asyncio.Lock()  # the host never overlaps invocations of one timer
        self._tasks: set[asyncio.Task[object]] = set()  # every invocation in progress
        # Messages received and not yet deleted, retried or poisoned: released if the run is cut short.
        self._leased: dict[str, tuple[QueueClient, StorageMessage]] = {}
        self._crash: BaseException | None = None  # a bug in the runner itself, raised by run_until
        self._running = False
        self._closed = False

    @property
    def queue_names(self) -> tuple[str, ...]:
        """The resolved names of the queues this runner listens on."""
        return tuple(fn.queue_name for fn in self._queue_functions)

    @property
    def in_flight(self) -> int:
        """Invocations in progress (queue and timer)."""
        return len(self._tasks)

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
                asyncio.create_task(self._poll_loop(fn, stop), name=f"{self.name}:{fn.name}")
                for fn in self._queue_functions
            ]
            if self._timer:
                run_on_startup = not self._timers_started
                self._timers_started = True
                loops += [
                    asyncio.create_task(
                        self._timer_loop(fn, stop, run_on_startup=run_on_startup),
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
            for pending in (loops, self._tasks):
                if pending:
                    await asyncio.wait(list(pending), timeout=max(0.0, deadline - loop.time()))
            self._raise_if_broken(loops)
            busy = [task.get_name() for task in [*loops, *self._tasks] if not task.done()]
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
            if self._tasks or any([await self._message_count(name) for name in self.queue_names]):
                quiet_since = None
                return False
            if quiet_since is None:
                quiet_since = loop.time()
            return loop.time() - quiet_since >= settle

        await self.run_until(drained, timeout=timeout)

    async def fire_timer(self, function_name: str | None = None) -> bool:
        """Invoke a timer function now, not past due; True if it succeeded (a failure is logged)."""
        if function_name is None:
            if len(self._timer_functions) != 1:
                raise ValueError(f"{self.name}: name one of the timer functions {self._timer_names()}")
            (fn,) = self._timer_functions
        else:
            matches = [fn for fn in self._timer_functions if fn.name == function_name]
            if not matches:
                raise ValueError(f"{self.name}: no timer function {function_name!r} in {self._timer_names()}")
            (fn,) = matches
        return await self._fire(fn, past_due=False)

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

    # Queue listener.

    async def _poll_loop(self, fn: _QueueFunction, stop: asyncio.Event) -> None:
        client = self._service.get_queue_client(fn.queue_name)
        mine: set[asyncio.Task[object]] = set()
        capacity = asyncio.Event()
        delay = min(_MIN_POLL_SECONDS, self._max_poll)

        def finished(task: asyncio.Task[object]) -> None:
            mine.discard(task)
            capacity.set()

        while not stop.is_set():
            # Like the host: fetch the next batch only once in-flight work is down to the threshold.
            while len(mine) > self.settings.new_batch_threshold and not stop.is_set():
                capacity.clear()
                await _first_of(capacity, stop)
            if stop.is_set():
                break
            try:
                batch = await self._receive(client)
            except AzureError as error:
                logger.warning("[%s] receiving from %s failed: %s", self.name, fn.queue_name, error)
                batch = []
            for message in batch:
                self._leased[message.id] = (client, message)
            if stop.is_set():
                break  # stopping: run_until releases what this last receive leased
            for message in batch:
                task = self._spawn(self._process(fn, client, message), f"{fn.name}:{message.id}")
                mine.add(task)
                task.add_done_callback(finished)
            if batch:
                delay = min(_MIN_POLL_SECONDS, self._max_poll)
                continue
            await _sleep_unless(stop, delay * random.uniform(1 - _POLL_JITTER, 1 + _POLL_JITTER))
            delay = min(delay * 2, self._max_poll)

    async def _receive(self, client: QueueClient) -> list[StorageMessage]:
        pages = client.receive_messages(
            messages_per_page=self.settings.batch_size, visibility_timeout=self._lease
        ).by_page()
        # One page is one Get Messages call, i.e. one batch.
        async for page in pages:
            return [message async for message in page]
        return []

    async def _process(self, fn: _QueueFunction, client: QueueClient, message: StorageMessage) -> None:
        dequeue_count = int(message.dequeue_count or 0)
        limit = self.settings.max_dequeue_count
        if dequeue_count > limit:
            # Delivered more often than allowed without a recorded failure (workers died): the host
            # poisons such a message before invoking anything.
            logger.warning(
                "[%s] message %s dequeued %d times (maxDequeueCount %d): moving it to %s-poison uninvoked",
                *(self.name, message.id, dequeue_count, limit, fn.queue_name),
            )
            await self._poison(fn, client, message)
            return
        try:
            body = self._decode(message.content)
        except ValueError as error:
            # The host's queue client cannot decode it either, and poisons it at once.
            logger.error(
                "[%s] message %s cannot be decoded (%s): moving it to poison", self.name, message.id, error
            )
            await self._poison(fn, client, message)
            return
        # The concrete classes the Python worker builds from the host's trigger metadata.
        queue_message = TriggerMessage(  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
            id=message.id,
            body=body,
            dequeue_count=dequeue_count,
            pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )
        self.stats.invoked += 1
        renewing = asyncio.Event()
        renewal = asyncio.create_task(self._keep_leased(client, message, renewing))
        try:
            try:
                await _invoke(fn.call, {fn.arg_name: queue_message})
            finally:
                # Let a renewal in progress finish: its new pop receipt is the one that settles.
                renewing.set()
                await asyncio.wait([renewal])
        except asyncio.CancelledError:
            if _being_cancelled():
                raise  # the runner is stopping; it releases the message
            self._failed(fn, message, dequeue_count, asyncio.CancelledError("the function was cancelled"))
        except Exception as error:
            self._failed(fn, message, dequeue_count, error)
        else:
            self.stats.succeeded += 1
            await self._settle("delete", client.delete_message(message), message)
            return
        if dequeue_count >= limit:
            await self._poison(fn, client, message)
        else:
            visibility = int(self.settings.visibility_timeout.total_seconds())
            await self._settle(
                "retry", client.update_message(message, visibility_timeout=visibility), message
            )

    async def _keep_leased(self, client: QueueClient, message: StorageMessage, done: asyncio.Event) -> None:
        """Renew the lease at half its length until ``done``, as the host does for long invocations."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._lease / 2)
            if done.is_set():
                return
            try:
                renewed = await client.update_message(message, visibility_timeout=self._lease)
            except AzureError as error:
                # The message may reappear for another worker meanwhile: at-least-once, as on the host.
                logger.warning(
                    "[%s] could not renew the lease of message %s: %s", self.name, message.id, error
                )
                continue
            message.pop_receipt = renewed.pop_receipt
            message.next_visible_on = renewed.next_visible_on

    def _failed(
        self, fn: _QueueFunction, message: StorageMessage, dequeue_count: int, error: BaseException
    ) -> None:
        self.stats.failed += 1
        limit = self.settings.max_dequeue_count
        outcome = (
            f"moving it to {fn.queue_name}-poison"
            if dequeue_count >= limit
            else f"retry after {self.settings.visibility_timeout.total_seconds():g} s"
        )
        logger.error(
            "[%s] %s failed on message %s (dequeue count %d of %d): %s: %s; %s",
            *(self.name, fn.name, message.id, dequeue_count, limit, type(error).__name__, error, outcome),
        )
        logger.debug("[%s] traceback of %s on message %s", self.name, fn.name, message.id, exc_info=error)

    async def _poison(self, fn: _QueueFunction, client: QueueClient, message: StorageMessage) -> None:
        poison = self._service.get_queue_client(f"{fn.queue_name}-poison")
        try:
            # The original text, still in the queue's encoding, as the host copies it.
            try:
                await poison.send_message(message.content)
            except ResourceNotFoundError:
                await _create_queue(poison)
                await poison.send_message(message.content)
        except AzureError as error:
            # Its next delivery is over maxDequeueCount, so poisoning is tried again then.
            logger.error("[%s] could not move message %s to poison: %s", self.name, message.id, error)
            visibility = int(self.settings.visibility_timeout.total_seconds())
            await self._settle(
                "retry", client.update_message(message, visibility_timeout=visibility), message
            )
            return
        self.stats.poisoned += 1
        await self._settle("delete", client.delete_message(message), message)

    async def _settle(self, action: str, operation: Awaitable[object], message: StorageMessage) -> None:
        # A lost pop receipt or a storage hiccup here means the message comes back later: at-least-once.
        # Cancelled midway, the message stays leased and the shutdown hands it back.
        try:
            await operation
        except AzureError as error:
            logger.warning("[%s] could not %s message %s: %s", self.name, action, message.id, error)
        self._leased.pop(message.id, None)

    def _decode(self, content: object) -> bytes:
        text = "" if content is None else str(content)
        if self.settings.message_encoding == "none":
            return text.encode("utf-8")
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise ValueError(f"not valid base64: {error}") from None

    async def _ensure_queues(self) -> None:
        if not self._queues_ready:
            for name in self.queue_names:
                await _create_queue(self._service.get_queue_client(name))
            self._queues_ready = True

    async def _message_count(self, queue_name: str) -> int:
        properties = await self._service.get_queue_client(queue_name).get_queue_properties()
        return int(properties.approximate_message_count or 0)

    # Timer.

    async def _timer_loop(self, fn: _TimerFunction, stop: asyncio.Event, *, run_on_startup: bool) -> None:
        if run_on_startup and fn.run_on_startup:
            await self._fire_tracked(fn, past_due=False)
        due = fn.schedule.next_after(datetime.now(UTC))
        while not stop.is_set():
            await _sleep_unless(stop, (due - datetime.now(UTC)).total_seconds())
            if stop.is_set():
                break
            past_due = datetime.now(UTC) - due > _PAST_DUE
            await self._fire_tracked(fn, past_due=past_due)
            # Occurrences missed while late or busy collapse into the one past-due firing.
            due = fn.schedule.next_after(datetime.now(UTC) if past_due else due)

    async def _fire_tracked(self, fn: _TimerFunction, *, past_due: bool) -> None:
        # A task of its own, so that stopping the runner waits for it (or cancels it) like queue work.
        await asyncio.wait([self._spawn(self._fire(fn, past_due=past_due), fn.name)])

    async def _fire(self, fn: _TimerFunction, *, past_due: bool) -> bool:
        async with self._timer_lock:
            self.stats.timer_fired += 1
            try:
                await _invoke(fn.call, {fn.arg_name: TimerRequest(past_due=past_due)})
            except Exception as error:
                self.stats.timer_failed += 1
                logger.error("[%s] timer %s failed: %s: %s", self.name, fn.name, type(error).__name__, error)
                logger.debug("[%s] traceback of timer %s", self.name, fn.name, exc_info=error)
                return False
            return True

    def _timer_names(self) -> list[str]:
        return [fn.name for fn in self._timer_functions]

    # Tasks.

    def _spawn(self, work: Coroutine[Any, Any, object], name: str) -> asyncio.Task[object]:
        task = asyncio.create_task(work, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        # Invocations catch the function's errors, so anything else is a bug here: never let it pass.
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("[%s] %s crashed: %s: %s", self.name, task.get_name(), type(error).__name__, error)
            self._crash = self._crash or error

    def _raise_if_broken(self, loops: list[asyncio.Task[None]]) -> None:
        if self._crash is not None:
            crash, self._crash = self._crash, None
            raise crash
        for task in loops:
            if task.done() and not task.cancelled():
                task.result()  # a loop only ends early by raising

    async def _shut_down(self, loops: list[asyncio.Task[None]]) -> None:
        """Stop as the host does: cancel invocations still running, hand unsettled messages back."""
        await _cancel(self._tasks)
        # A poll loop in the middle of a receive must finish it, or the batch it leased would be lost
        # until the lease expires; a loop stuck past the grace period is cancelled all the same.
        if loops:
            _, stuck = await asyncio.wait(loops, timeout=_STOP_GRACE_SECONDS)
            await _cancel(stuck)
        leased = list(self._leased.values())
        await asyncio.gather(
            *(
                self._settle("release", client.update_message(message, visibility_timeout=0), message)
                for client, message in leased
            )
        )


def _discover(
    app: func.FunctionApp, environ: Mapping[str, str]
) -> tuple[tuple[_QueueFunction, ...], tuple[_TimerFunction, ...]]:
    queue_functions: list[_QueueFunction] = []
    timer_functions: list[_TimerFunction] = []
    for function in functions_of(app):
        name = function.get_function_name() or function.get_user_function().__name__
        trigger = function.get_trigger()
        if not isinstance(trigger, QueueTrigger | TimerTrigger):
            logger.info("function %s is not run locally: only queue and timer triggers are", name)
            continue
        others = [binding.name for binding in function.get_bindings() if binding is not trigger]
        if others:
            raise ValueError(
                f"function {name}: the local runner supports no bindings besides the trigger: {others}"
            )
        if isinstance(trigger, QueueTrigger):
            queue_name = _resolve(trigger.queue_name, environ, name, "queue_name")
            queue_functions.append(
                _QueueFunction(name, trigger.name, queue_name, function.get_user_function())
            )
        else:
            expression = _resolve(trigger.schedule, environ, name, "schedule")
            try:
                schedule = NCrontab.parse(expression)
            except ValueError as error:
                raise ValueError(f"function {name}: {error}") from None
            timer_functions.append(
                _TimerFunction(
                    name, trigger.name, schedule, bool(trigger.run_on_startup), function.get_user_function()
                )
            )
    if not queue_functions and not timer_functions:
        raise ValueError("the app has no queue-triggered or timer-triggered function")
    return tuple(queue_functions), tuple(timer_functions)


def _resolve(value: str, environ: Mapping[str, str], function_name: str, field: str) -> str:
    """Replace ``%SETTING%`` with the app setting, as the host resolves binding expressions."""

    def setting(match: re.Match[str]) -> str:
        key = match[1]
        if key not in environ:
            raise ValueError(
                f"function {function_name}: {field} {value!r} needs app setting {key}, which is not set"
            )
        return environ[key]

    resolved = _SETTING_REFERENCE.sub(setting, value)
    if not resolved:
        raise ValueError(f"function {function_name}: {field} is empty")
    return resolved


async def _invoke(call: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    # The Python worker awaits async functions on its loop and runs sync ones on a thread pool.
    result = call(**kwargs) if inspect.iscoroutinefunction(call) else await asyncio.to_thread(call, **kwargs)
    if inspect.isawaitable(result):
        await result


async def _holds(predicate: Callable[[], Awaitable[bool] | bool]) -> bool:
    result = predicate()
    return bool(await result) if inspect.isawaitable(result) else bool(result)


async def _cancel(tasks: set[asyncio.Task[object]] | set[asyncio.Task[None]]) -> None:
    doomed = list(tasks)
    for task in doomed:
        task.cancel()
    if doomed:
        await asyncio.wait(doomed)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _create_queue(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):  # another runner (or the app) made it first
        await client.create_queue()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
