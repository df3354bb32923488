"""The queue listener: batches received as the host receives them, one invocation per message, and
each message settled by the outcome (deleted, retried after ``visibilityTimeout``, or poisoned)."""

from __future__ import annotations

import asyncio
import logging
import random

from azure.core.exceptions import AzureError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueMessage as StorageMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from local.host.functions import QueueFunction
from local.host.invocations import Invocations, RunnerStats, being_cancelled, first_of, invoke, sleep_unless
from local.host.leases import Leases
from local.host.poison import poison_after_failure, poison_before_invocation, poison_queue, send_to_poison
from local.host.settings import HostQueueSettings

__all__ = ["Dispatcher", "first_poll_delay", "next_poll_delay"]

logger = logging.getLogger(__name__)

# The host's empty-queue backoff starts at 100 ms and doubles, randomised, up to maxPollingInterval.
_MIN_POLL_SECONDS = 0.1
_POLL_JITTER = 0.2


def first_poll_delay(max_poll: float) -> float:
    """The wait after the first empty receive, and again after any batch that held messages."""
    return min(_MIN_POLL_SECONDS, max_poll)


def next_poll_delay(delay: float, max_poll: float) -> float:
    """The wait after another empty receive: twice the last, up to ``max_poll``."""
    return min(delay * 2, max_poll)


class Dispatcher:
    """Runs queue functions on their messages with the host's delivery semantics (module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        service: QueueServiceClient,
        settings: HostQueueSettings,
        leases: Leases,
        invocations: Invocations,
        stats: RunnerStats,
        max_poll: float,
    ) -> None:
        self._name = name
        self._service = service
        self._settings = settings
        self._leases = leases
        self._invocations = invocations
        self._stats = stats
        self._max_poll = max_poll

    async def listen(self, fn: QueueFunction, stop: asyncio.Event) -> None:
        """Receive batches from the function's queue and dispatch them until ``stop``."""
        client = self._service.get_queue_client(fn.queue_name)
        mine: set[asyncio.Task[object]] = set()
        capacity = asyncio.Event()
        delay = first_poll_delay(self._max_poll)

        def finished(task: asyncio.Task[object]) -> None:
            mine.discard(task)
            capacity.set()

        while not stop.is_set():
            # Like the host: fetch the next batch only once in-flight work is down to the threshold.
            while len(mine) > self._settings.new_batch_threshold and not stop.is_set():
                capacity.clear()
                await first_of(capacity, stop)
            if stop.is_set():
                break
            try:
                batch = await self._receive(client)
            except AzureError as error:
                logger.warning("[%s] receiving from %s failed: %s", self._name, fn.queue_name, error)
                batch = []
            for message in batch:
                self._leases.hold(client, message)
            if stop.is_set():
                break  # stopping: the runner releases what this last receive leased
            for message in batch:
                task = self._invocations.spawn(self._process(fn, client, message), f"{fn.name}:{message.id}")
                mine.add(task)
                task.add_done_callback(finished)
            if batch:
                delay = first_poll_delay(self._max_poll)
                continue
            await sleep_unless(stop, delay * random.uniform(1 - _POLL_JITTER, 1 + _POLL_JITTER))
            delay = next_poll_delay(delay, self._max_poll)

    async def _receive(self, client: QueueClient) -> list[StorageMessage]:
        pages = client.receive_messages(
            messages_per_page=self._settings.batch_size, visibility_timeout=self._leases.seconds
        ).by_page()
        # One page is one Get Messages call, i.e. one batch.
        async for page in pages:
            return [message async for message in page]
        return []

    async def _process(self, fn: QueueFunction, client: QueueClient, message: StorageMessage) -> None:
        dequeue_count = int(message.dequeue_count or 0)
        limit = self._settings.max_dequeue_count
        if poison_before_invocation(dequeue_count, limit):
            logger.warning(
                "[%s] message %s dequeued %d times (maxDequeueCount %d): moving it to %s uninvoked",
                *(self._name, message.id, dequeue_count, limit, poison_queue(fn.queue_name)),
            )
            await self._poison(fn, client, message)
            return
        try:
            body = self._settings.decode(message.content)
        except ValueError as error:
            # The host's queue client cannot decode it either, and poisons it at once.
            logger.error(
                "[%s] message %s cannot be decoded (%s): moving it to poison", self._name, message.id, error
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
        self._stats.invoked += 1
        renewing = asyncio.Event()
        renewal = asyncio.create_task(self._leases.keep(client, message, renewing))
        started = asyncio.get_running_loop().time()
        try:
            try:
                await invoke(fn.call, {fn.arg_name: queue_message})
            finally:
                self._stats.longest = max(self._stats.longest, asyncio.get_running_loop().time() - started)
                # Let a renewal in progress finish: its new pop receipt is the one that settles.
                renewing.set()
                await asyncio.wait([renewal])
        except asyncio.CancelledError:
            if being_cancelled():
                raise  # the runner is stopping; it releases the message
            self._failed(fn, message, dequeue_count, asyncio.CancelledError("the function was cancelled"))
        except Exception as error:
            self._failed(fn, message, dequeue_count, error)
        else:
            self._stats.succeeded += 1
            await self._leases.settle("delete", client.delete_message(message), message)
            return
        if poison_after_failure(dequeue_count, limit):
            await self._poison(fn, client, message)
        else:
            await self._retry(client, message)

    def _failed(
        self, fn: QueueFunction, message: StorageMessage, dequeue_count: int, error: BaseException
    ) -> None:
        self._stats.failed += 1
        limit = self._settings.max_dequeue_count
        outcome = (
            f"moving it to {poison_queue(fn.queue_name)}"
            if poison_after_failure(dequeue_count, limit)
            else f"retry after {self._settings.visibility_timeout.total_seconds():g} s"
        )
        logger.error(
            "[%s] %s failed on message %s (dequeue count %d of %d): %s: %s; %s",
            *(self._name, fn.name, message.id, dequeue_count, limit, type(error).__name__, error, outcome),
        )
        logger.debug("[%s] traceback of %s on message %s", self._name, fn.name, message.id, exc_info=error)

    async def _poison(self, fn: QueueFunction, client: QueueClient, message: StorageMessage) -> None:
        try:
            await send_to_poison(self._service, fn.queue_name, message.content)
        except AzureError as error:
            # Its next delivery is over maxDequeueCount, so poisoning is tried again then.
            logger.error("[%s] could not move message %s to poison: %s", self._name, message.id, error)
            await self._retry(client, message)
            return
        self._stats.poisoned += 1
        await self._leases.settle("delete", client.delete_message(message), message)

    async def _retry(self, client: QueueClient, message: StorageMessage) -> None:
        visibility = int(self._settings.visibility_timeout.total_seconds())
        await self._leases.settle(
            "retry", client.update_message(message, visibility_timeout=visibility), message
        )
