"""The lease keeper: the messages a runner holds, renewed at half the lease while their function runs,
each settled once (deleted, retried, poisoned) or handed back at once when the run stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from local.host.invocations import sleep_unless

__all__ = ["LEASE_SECONDS", "Leases"]

logger = logging.getLogger(__name__)

# The host leases each message for 10 minutes and renews the lease at half that while its function
# runs; a message leased by a process that died comes back when the lease runs out.
LEASE_SECONDS = 600

# Waits until the event is set or the seconds have passed; injected to test renewal without sleeping.
Wait = Callable[[asyncio.Event, float], Awaitable[None]]


class Leases:
    """The messages received and not yet settled, by id, with the queue client each came from."""

    def __init__(self, *, seconds: int, name: str, wait: Wait = sleep_unless) -> None:
        if seconds < 1:
            raise ValueError(f"lease_seconds must be at least 1, got {seconds}")
        self.seconds = seconds
        self._name = name
        self._wait = wait
        self._held: dict[str, tuple[QueueClient, QueueMessage]] = {}

    @property
    def renewal_interval(self) -> float:
        """How long after a receive or renewal the lease is renewed: half of it, as the host does."""
        return self.seconds / 2

    def hold(self, client: QueueClient, message: QueueMessage) -> None:
        """Remember a message just received, until it is settled or released."""
        self._held[message.id] = (client, message)

    def __len__(self) -> int:
        return len(self._held)

    async def keep(self, client: QueueClient, message: QueueMessage, done: asyncio.Event) -> None:
        """Renew the lease every ``renewal_interval`` until ``done``; each renewal's pop receipt
        replaces the message's, so that it is the one that settles."""
        while True:
            await self._wait(done, self.renewal_interval)
            if done.is_set():
                return
            try:
                renewed = await client.update_message(message, visibility_timeout=self.seconds)
            except AzureError as error:
                # The message may reappear for another worker meanwhile: at-least-once, as on the host.
                logger.warning(
                    "[%s] could not renew the lease of message %s: %s", self._name, message.id, error
                )
                continue
            message.pop_receipt = renewed.pop_receipt
            message.next_visible_on = renewed.next_visible_on

    async def settle(self, action: str, operation: Awaitable[object], message: QueueMessage) -> None:
        """Await the delete or update that ends this runner's hold on the message, and forget it."""
        # A lost pop receipt or a storage hiccup here means the message comes back later: at-least-once.
        # Cancelled midway, the message stays held and release_all hands it back.
        try:
            await operation
        except AzureError as error:
            logger.warning("[%s] could not %s message %s: %s", self._name, action, message.id, error)
        self._held.pop(message.id, None)

    async def release_all(self) -> None:
        """Make every message still held visible again at once, as the host does when it shuts down."""
        held = list(self._held.values())
        await asyncio.gather(
            *(
                self.settle("release", client.update_message(message, visibility_timeout=0), message)
                for client, message in held
            )
        )
