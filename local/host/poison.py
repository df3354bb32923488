"""The host's poison rule: how many deliveries a message gets, and the move to ``<queue>-poison``."""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient, QueueServiceClient

__all__ = [
    "create_queue",
    "poison_after_failure",
    "poison_before_invocation",
    "poison_queue",
    "send_to_poison",
]


def poison_before_invocation(dequeue_count: int, max_dequeue_count: int) -> bool:
    """Delivered more often than allowed without a recorded failure (workers died while it ran): the
    host poisons such a message without invoking anything."""
    return dequeue_count > max_dequeue_count


def poison_after_failure(dequeue_count: int, max_dequeue_count: int) -> bool:
    """A failure on the last allowed delivery poisons the message; an earlier one lets it retry."""
    return dequeue_count >= max_dequeue_count


def poison_queue(queue_name: str) -> str:
    """The queue the host moves a trigger queue's poison messages to."""
    return f"{queue_name}-poison"


async def send_to_poison(service: QueueServiceClient, queue_name: str, content: object) -> None:
    """Copy the message's original text, still in the queue's encoding as the host copies it, to the
    poison queue, created when absent; an AzureError when storage refuses."""
    poison = service.get_queue_client(poison_queue(queue_name))
    try:
        await poison.send_message(content)
    except ResourceNotFoundError:
        await create_queue(poison)
        await poison.send_message(content)


async def create_queue(client: QueueClient) -> None:
    """Create the queue unless it exists already (another runner, or the app, made it first)."""
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()
