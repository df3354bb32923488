"""Archive events through the real entry points (DESIGN.md, "Archive events"): every archived job is
announced after its manifest and before its message is acknowledged, again by whoever finds the
manifest already there, never for a job without one. "Dying" between the commit and the send is a
send that fails at that exact point (the events queue unreachable); the chaos run kills processes."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import AzureError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from local.host.azurite import Azurite, connection_string
from shared.events import ArchiveEvents
from shared.messages import JobMessage
from shared.runtime import Runtime, build_runtime
from shared.sweep import run_sweep
from shared.worker import Outcome, handle_message

from .conftest import Stack
from .test_sweep_function import fire_sweep, put_record

pytestmark = pytest.mark.integration


def with_events() -> pytest.MarkDecorator:
    """The test's stack with an events queue of its own."""
    return pytest.mark.parametrize(
        "stack", [{"EVENTS_QUEUE": f"events-{uuid.uuid4().hex[:12]}"}], indirect=True
    )


async def sent_events(stack: Stack) -> list[str]:
    """The events on the queue, as the JSON text the app sent (base64 decoded), oldest first."""
    assert stack.settings.events_queue is not None
    queue = stack.queues.get_queue_client(stack.settings.events_queue)
    if not await queue_exists(stack, stack.settings.events_queue):
        return []
    return [base64.b64decode(m.content).decode("utf-8") for m in await queue.peek_messages(max_messages=32)]


async def queue_exists(stack: Stack, name: str) -> bool:
    return name in [queue.name async for queue in stack.queues.list_queues(name_starts_with=name)]


def assert_announces(text: str, manifest: dict[str, Any], stack: Stack) -> None:
    """The event agrees with the manifest, field by field (checked here, not with the app's renderer)."""
    event = json.loads(text)
    container = f"{stack.blobs.url.rstrip('/')}/{stack.settings.archive_container}"
    job_id = manifest["jobId"]
    assert event["specversion"] == "1.0"
    assert event["type"] == "LanguageJobArchiver.JobArchived"
    assert event["id"] == job_id
    assert event["source"] == container
    assert event["subject"] == f"{job_id}/manifest.json"
    assert event["time"] == manifest["archivedAt"]
    assert event["data"]["manifestUrl"] == f"{container}/{job_id}/manifest.json"
    for field in ("jobId", "status", "archivedAt", "correlationId", "metadata", "displayName"):
        assert event["data"][field] == manifest[field], field
    for field in ("documentCount", "entityCount", "errorCount"):
        assert event["data"][field] == sum(task[field] for task in manifest["tasks"]), field
    assert event["data"]["taskCount"] == len(manifest["tasks"])


async def assert_announced_once_and_forgotten(stack: Stack, job_id: str) -> None:
    manifest = await stack.manifest(job_id)
    assert manifest is not None
    [event] = await sent_events(stack)
    assert_announces(event, manifest, stack)
    assert await stack.ledger_names() == []


@pytest.fixture
async def unreachable_events(stack: Stack, azurite: Azurite) -> AsyncIterator[Runtime]:
    """The app's runtime whose events queue cannot be reached: the send fails right after the commit."""
    runtime = await build_runtime(stack.settings)
    queue = QueueClient.from_connection_string(
        connection_string(azurite.blob_port, 9),  # nothing listens on port 9: connection refused
        "unreachable",
        retry_total=0,
        message_encode_policy=TextBase64EncodePolicy(),
    )
    events = ArchiveEvents(
        queue=queue,
        container_url=f"{stack.blobs.url}{stack.settings.archive_container}",
        time_to_live=stack.settings.events_time_to_live_seconds,
    )
    yield dataclasses.replace(runtime, events=events)
    await queue.close()
    await runtime.aclose()


@with_events()
async def test_a_job_archived_at_its_first_poll_is_announced_once(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id, "correlationId": "case-1", "metadata": {"team": "a"}})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    [event] = await sent_events(stack)  # the queue was created on first use
    assert_announces(event, manifest, stack)
    assert json.loads(event)["data"]["metadata"] == {"team": "a"}


@with_events()
async def test_a_job_that_ends_not_found_is_announced_with_that_status(stack: Stack) -> None:
    job_id = str(uuid.uuid4())  # the service never heard of it, and the grace has long passed
    seen = datetime.now(UTC) - timedelta(minutes=5)

    await stack.deliver(await stack.rescheduled(JobMessage(job_id=job_id, attempt=1, first_seen_at=seen)))

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "notFound"
    [event] = await sent_events(stack)
    assert_announces(event, manifest, stack)


@with_events()
async def test_an_unfinished_job_is_not_announced(stack: Stack, slow_jobs: None) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is None
    assert await sent_events(stack) == []


@with_events()
async def test_dying_between_the_commit_and_the_send_leaves_the_message_and_its_redelivery_announces(
    stack: Stack, unreachable_events: Runtime
) -> None:
    job_id = await stack.submit()
    body = json.dumps({"jobId": job_id}).encode()

    with pytest.raises(AzureError):  # raised: the host does not acknowledge the message
        await handle_message(body, dequeue_count=1, runtime=unreachable_events)
    assert await stack.manifest(job_id) is not None
    assert await sent_events(stack) == []

    await stack.deliver(body, dequeue_count=2)  # the host delivers it again

    await assert_announced_once_and_forgotten(stack, job_id)


@with_events()
async def test_when_that_message_is_lost_too_the_sweep_announces_the_job(
    stack: Stack, unreachable_events: Runtime
) -> None:
    job_id = await stack.submit()

    with pytest.raises(AzureError):
        await handle_message(
            json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=unreachable_events
        )
    # The failed send left a ledger record, so the sweep finds the job even if the message is gone.
    assert await stack.ledger_names() == [f"{job_id}.json"]
    later = await build_runtime(stack.settings, clock=lambda: datetime.now(UTC) + timedelta(minutes=10))
    try:
        report = await run_sweep(later)
    finally:
        await later.aclose()

    assert report.cleaned == 1
    await assert_announced_once_and_forgotten(stack, job_id)


@with_events()
async def test_the_sweep_announces_a_job_whose_ledger_record_outlived_its_manifest(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.deliver({"jobId": job_id}, dequeue_count=1)
    await put_record(stack, job_id, due=datetime.now(UTC) - timedelta(minutes=10))  # as if never forgotten

    await fire_sweep()

    first, again = await sent_events(stack)
    assert first == again  # the same event, the same id: consumers deduplicate
    assert await stack.ledger_names() == []


@with_events()
async def test_dying_after_the_send_before_the_ack_announces_the_same_event_again(stack: Stack) -> None:
    job_id = await stack.submit()
    body = json.dumps({"jobId": job_id}).encode()
    await stack.deliver(body, dequeue_count=1)

    await stack.deliver(body, dequeue_count=2)  # the ack was lost: redelivered

    first, again = await sent_events(stack)
    assert first == again


@with_events()
async def test_a_duplicate_that_loses_the_commit_announces_the_winners_manifest(stack: Stack) -> None:
    job_id = await stack.submit()
    body = json.dumps({"jobId": job_id}).encode()
    await stack.deliver(body)
    later = await build_runtime(stack.settings, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    try:
        result = await handle_message(body, dequeue_count=1, runtime=later)  # a duplicate delivery
    finally:
        await later.aclose()

    assert result.outcome is Outcome.ALREADY_ARCHIVED
    first, again = await sent_events(stack)
    assert first == again  # archivedAt is the manifest's, not the duplicate's clock


@with_events()
async def test_a_manifest_the_app_did_not_write_is_not_announced_and_the_message_is_done(
    stack: Stack,
) -> None:
    job_id = await stack.submit()
    container = stack.blobs.get_container_client(stack.settings.archive_container)
    await container.create_container()
    await container.upload_blob(f"{job_id}/manifest.json", b'{"jobId": "someone else"}')

    await stack.deliver({"jobId": job_id}, dequeue_count=2)

    assert await sent_events(stack) == []


async def test_without_events_queue_no_queue_is_created(stack: Stack) -> None:
    job_id = await stack.submit()
    before = {queue.name async for queue in stack.queues.list_queues()}

    await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is not None
    assert {queue.name async for queue in stack.queues.list_queues()} == before


async def event_lifetimes(stack: Stack) -> list[float]:
    """Seconds from each event's insertion to its expiry, as the queue service reports them."""
    assert stack.settings.events_queue is not None
    queue = stack.queues.get_queue_client(stack.settings.events_queue)
    lifetimes = []
    for message in await queue.peek_messages(max_messages=32):
        assert message.expires_on is not None
        assert message.inserted_on is not None
        lifetimes.append((message.expires_on - message.inserted_on).total_seconds())
    return lifetimes


@with_events()
async def test_every_event_expires_after_the_default_seven_days_unread(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id})

    assert await event_lifetimes(stack) == [7 * 24 * 3600]


@pytest.mark.parametrize(
    "stack",
    [{"EVENTS_QUEUE": f"events-{uuid.uuid4().hex[:12]}", "EVENTS_TIME_TO_LIVE_SECONDS": "3600"}],
    indirect=True,
)
async def test_events_expire_after_events_time_to_live_seconds(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id})

    assert await event_lifetimes(stack) == [3600]
