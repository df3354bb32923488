"""The lease keeper: renewal at half the lease while a function runs, settling, and the hand-back."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from local.host.leases import LEASE_SECONDS, Leases


class Waits:
    """An injected wait that returns at once and records how long it was asked to wait; the event
    is set after ``rounds`` waits, so the keeper renews ``rounds - 1`` times without sleeping."""

    def __init__(self, rounds: int) -> None:
        self.asked: list[float] = []
        self._rounds = rounds

    async def __call__(self, done: asyncio.Event, seconds: float) -> None:
        self.asked.append(seconds)
        if len(self.asked) >= self._rounds:
            done.set()


@pytest.fixture
async def queue(queue_service: QueueServiceClient) -> AsyncIterator[QueueClient]:
    client = queue_service.get_queue_client(f"l-{uuid.uuid4().hex[:16]}")
    await client.create_queue()
    yield client
    await client.delete_queue()


async def leased(queue: QueueClient, seconds: int) -> QueueMessage:
    await queue.send_message("aGVsbG8=")
    (message,) = [message async for message in queue.receive_messages(visibility_timeout=seconds)]
    return message


def test_the_host_lease_is_renewed_every_five_minutes() -> None:
    assert Leases(seconds=LEASE_SECONDS, name="t").renewal_interval == 300


def test_a_lease_shorter_than_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="lease_seconds must be at least 1, got 0"):
        Leases(seconds=0, name="t")


async def test_keep_renews_at_half_the_lease_until_done(queue: QueueClient) -> None:
    waits = Waits(rounds=3)
    leases = Leases(seconds=60, name="t", wait=waits)
    message = await leased(queue, 5)
    receipts = [message.pop_receipt]

    await leases.keep(queue, message, asyncio.Event())
    receipts.append(message.pop_receipt)

    assert waits.asked == [30.0, 30.0, 30.0]
    assert receipts[0] != receipts[1]  # renewed: the latest pop receipt is the one that settles
    assert message.next_visible_on is not None
    assert message.next_visible_on > datetime.now(UTC) + timedelta(seconds=50)
    await queue.delete_message(message)  # only the renewed receipt is valid now


async def test_keep_returns_without_renewing_when_done_before_the_first_renewal(queue: QueueClient) -> None:
    leases = Leases(seconds=60, name="t", wait=Waits(rounds=1))
    message = await leased(queue, 5)
    receipt = message.pop_receipt

    await leases.keep(queue, message, asyncio.Event())

    assert message.pop_receipt == receipt


async def test_a_failed_renewal_is_logged_and_keeping_goes_on(
    queue: QueueClient, caplog: pytest.LogCaptureFixture
) -> None:
    waits = Waits(rounds=3)
    leases = Leases(seconds=60, name="t", wait=waits)
    message = await leased(queue, 5)
    await queue.delete_message(message)  # gone: every renewal fails

    with caplog.at_level(logging.WARNING, logger="local.host.leases"):
        await leases.keep(queue, message, asyncio.Event())

    assert len(waits.asked) == 3
    assert sum("could not renew the lease" in record.getMessage() for record in caplog.records) == 2


async def test_settle_forgets_the_message_even_when_storage_refuses(queue: QueueClient) -> None:
    leases = Leases(seconds=60, name="t")
    message = await leased(queue, 60)
    leases.hold(queue, message)
    await queue.delete_message(message)

    await leases.settle("delete", queue.delete_message(message), message)

    assert len(leases) == 0


async def test_release_all_makes_held_messages_visible_at_once(queue: QueueClient) -> None:
    leases = Leases(seconds=60, name="t")
    message = await leased(queue, 60)
    leases.hold(queue, message)

    await leases.release_all()

    assert len(leases) == 0
    assert [m.id async for m in queue.receive_messages(visibility_timeout=1)] == [message.id]
