"""The queues' backlog as the sweep measures it (QueueWatch against Azurite): the length counts every
message, the age is that of the first visible one, a queue not created yet has no backlog, and a
queue that cannot be reached is left out without failing the sweep."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from local.host.azurite import Azurite, connection_string
from shared.backlog import Backlog, QueueWatch
from shared.telemetry import QueueRole, Telemetry

from .conftest import Stack

pytestmark = pytest.mark.integration


class RecordedBacklog(Telemetry):
    """The telemetry interface, keeping what the watch recorded."""

    def __init__(self) -> None:
        self.recorded: list[tuple[QueueRole, int, float]] = []

    def queue_backlog(self, queue: QueueRole, *, length: int, oldest_age: float) -> None:
        self.recorded.append((queue, length, oldest_age))


async def new_queue(stack: Stack) -> QueueClient:
    queue = stack.queues.get_queue_client(f"watch-{uuid.uuid4().hex[:12]}")
    await queue.create_queue()
    return queue


async def test_length_counts_every_message_and_age_is_the_first_visible_one(stack: Stack) -> None:
    queue = await new_queue(stack)
    first = await queue.send_message("first")
    await queue.send_message("second")
    await queue.send_message("later", visibility_timeout=600)  # a rescheduled poll
    assert first.inserted_on is not None
    telemetry = RecordedBacklog()

    found = await QueueWatch(queues={QueueRole.JOBS: queue}).observe(
        now=first.inserted_on + timedelta(seconds=90), telemetry=telemetry
    )

    assert found == [Backlog(QueueRole.JOBS, 3, 90.0)]
    assert telemetry.recorded == [(QueueRole.JOBS, 3, 90.0)]


async def test_a_queue_whose_messages_are_all_invisible_has_a_length_but_no_age(stack: Stack) -> None:
    queue = await new_queue(stack)
    sent = await queue.send_message("next poll", visibility_timeout=300)
    assert sent.inserted_on is not None

    [backlog] = await QueueWatch(queues={QueueRole.JOBS: queue}).observe(
        now=sent.inserted_on + timedelta(hours=1), telemetry=RecordedBacklog()
    )

    assert (backlog.length, backlog.oldest_age) == (1, 0.0)


async def test_a_queue_not_created_yet_has_no_backlog(stack: Stack) -> None:
    missing = stack.queues.get_queue_client(f"never-{uuid.uuid4().hex[:12]}")
    telemetry = RecordedBacklog()

    found = await QueueWatch(queues={QueueRole.POISON: missing}).observe(
        now=datetime.now(UTC), telemetry=telemetry
    )

    assert found == [Backlog(QueueRole.POISON, 0, 0.0)]
    assert telemetry.recorded == [(QueueRole.POISON, 0, 0.0)]


async def test_an_unreachable_queue_is_logged_and_left_out_while_the_others_are_measured(
    stack: Stack, azurite: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    reachable = await new_queue(stack)
    unreachable = QueueClient.from_connection_string(
        connection_string(azurite.blob_port, 9),  # nothing listens on port 9: connection refused
        "unreachable",
        retry_total=0,
        message_encode_policy=TextBase64EncodePolicy(),
    )
    telemetry = RecordedBacklog()
    watch = QueueWatch(queues={QueueRole.EVENTS: unreachable, QueueRole.JOBS: reachable})

    with caplog.at_level(logging.WARNING, logger="archiver.backlog"):
        async with unreachable:
            found = await watch.observe(now=datetime.now(UTC), telemetry=telemetry)

    assert found == [Backlog(QueueRole.JOBS, 0, 0.0)]
    [record] = caplog.records
    assert record.getMessage().startswith("could not measure the events queue unreachable (")
