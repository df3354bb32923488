"""The timer-triggered sweep, through the real entry point: no accepted job is ever forgotten."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.functions.timer import TimerRequest

from shared.messages import JobMessage
from shared.runtime import process_runtime
from shared.sweep import run_sweep
from shared.timefmt import format_time, parse_time

from .conftest import Stack, app_function

pytestmark = pytest.mark.integration


async def fire_sweep() -> None:
    await app_function("sweep_ledger")(TimerRequest(past_due=False))


async def put_record(stack: Stack, job_id: str, *, due: datetime) -> None:
    """A ledger record as the app writes it, whose message is nowhere (lost or poisoned)."""
    container = stack.blobs.get_container_client(stack.settings.ledger_container)
    if not await container.exists():
        await container.create_container()
    message = JobMessage(
        job_id=job_id, display_name="lost", attempt=3, first_seen_at=due - timedelta(minutes=1)
    )
    body = {"jobId": job_id, "nextPollAt": format_time(due), "message": json.loads(message.to_json())}
    await container.upload_blob(
        f"{job_id}.json",
        json.dumps(body).encode(),
        metadata={"nextpollat": format_time(due) or ""},
        overwrite=True,
    )


async def record_due(stack: Stack, job_id: str) -> datetime | None:
    data = await stack.blob(f"{job_id}.json", container=stack.settings.ledger_container)
    return None if data is None else parse_time(json.loads(data)["nextPollAt"])


async def test_overdue_job_whose_message_was_lost_is_redriven(stack: Stack) -> None:
    job_id = await stack.submit()
    await put_record(stack, job_id, due=datetime.now(UTC) - timedelta(minutes=10))

    await fire_sweep()

    text, _ = await stack.next_job_message(wait=2)
    assert json.loads(text)["jobId"] == job_id
    assert json.loads(text)["_poll"]["ledgerEtag"]


async def test_redriven_job_is_archived_by_the_message_the_sweep_sent(stack: Stack) -> None:
    job_id = await stack.submit()
    await put_record(stack, job_id, due=datetime.now(UTC) - timedelta(minutes=10))
    await fire_sweep()

    text, dequeue_count = await stack.next_job_message(wait=2)
    await stack.deliver(text, dequeue_count=dequeue_count)

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "succeeded"
    assert await stack.ledger_names() == []


async def test_job_within_its_grace_is_left_alone(stack: Stack) -> None:
    job_id = await stack.submit()
    due = datetime.now(UTC) + timedelta(minutes=10)
    await put_record(stack, job_id, due=due)

    await fire_sweep()

    assert await stack.queue_length(stack.settings.jobs_queue) == 0
    assert await record_due(stack, job_id) == due


async def test_record_of_an_archived_job_is_removed(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.deliver({"jobId": job_id})
    await put_record(stack, job_id, due=datetime.now(UTC) - timedelta(minutes=10))

    await fire_sweep()

    assert await stack.ledger_names() == []
    assert await stack.queue_length(stack.settings.jobs_queue) == 0


@pytest.mark.usefixtures("slow_jobs")
async def test_late_original_message_is_superseded_by_the_sweeps_redrive(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.deliver({"jobId": job_id})  # pending: recorded, its next message is on the queue
    original, original_count = await stack.next_job_message()
    # Pretend that message was delayed for long: the record is overdue (and, rewritten, has a new
    # ETag, as after any writer): the sweep re-drives the job and the original becomes stale.
    await put_record(stack, job_id, due=datetime.now(UTC) - timedelta(minutes=10))
    await fire_sweep()
    redriven, redriven_count = await stack.next_job_message(wait=2)

    await stack.deliver(original, dequeue_count=original_count)
    assert await stack.queue_length(stack.settings.jobs_queue) == 0  # the stale copy stopped
    await stack.deliver(redriven, dequeue_count=redriven_count)
    assert await stack.queue_length(stack.settings.jobs_queue) == 1  # the sweep's copy carries on


async def test_sweep_redrives_every_overdue_job_and_reports_them(stack: Stack) -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    job_ids = [await stack.submit() for _ in range(12)]
    for job_id in job_ids:
        await put_record(stack, job_id, due=past)

    report = await run_sweep(await process_runtime())

    assert report.scanned == 12
    assert sorted(report.job_ids) == sorted(job_ids)
    assert await stack.queue_length(stack.settings.jobs_queue) == 12


async def test_archive_that_failed_on_redelivery_is_finished_through_the_ledger_and_sweep(
    stack: Stack,
) -> None:
    job_id = await stack.submit()
    container = stack.blobs.get_container_client(stack.settings.archive_container)
    await container.create_container()
    torn = container.get_blob_client(f"{job_id}/tasks/00-EntityRecognitionLROResults.json")
    await torn.upload_blob(b'{"half": ')
    lease = await torn.acquire_lease(lease_duration=-1)  # a real storage fault: the blob is locked

    with pytest.raises(HttpResponseError):
        await stack.deliver({"jobId": job_id}, dequeue_count=2)  # the host retries, then poisons it

    assert await stack.ledger_names() == [f"{job_id}.json"]  # recorded before the fault
    await lease.break_lease(lease_break_period=0)
    await asyncio.sleep(stack.settings.sweep_grace_seconds + 0.2)  # the record becomes overdue
    await fire_sweep()
    text, dequeue_count = await stack.next_job_message(wait=2)
    await stack.deliver(text, dequeue_count=dequeue_count)

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    data = await stack.blob(manifest["tasks"][0]["blob"]) or b""
    assert hashlib.sha256(data).hexdigest() == manifest["tasks"][0]["sha256"]
    assert await stack.ledger_names() == []


async def test_a_job_late_by_less_than_the_apps_polls_are_is_left_alone(stack: Stack) -> None:
    """While the request budget holds polls back (a long 429 storm), a late job only waits its turn."""
    runtime = await process_runtime()
    runtime.budget.poll_late(3600.0)  # polls come an hour late: shared with the next take
    await runtime.budget.acquire()
    job_id = await stack.submit()
    due = datetime.now(UTC) - timedelta(minutes=10)
    await put_record(stack, job_id, due=due)

    await fire_sweep()

    assert await stack.queue_length(stack.settings.jobs_queue) == 0
    assert await record_due(stack, job_id) == due


async def test_a_redriven_message_is_due_when_the_sweep_sent_it(stack: Stack) -> None:
    job_id = await stack.submit()
    await put_record(stack, job_id, due=datetime.now(UTC) - timedelta(minutes=10))
    before = datetime.now(UTC) - timedelta(seconds=1)

    await fire_sweep()

    text, _ = await stack.next_job_message(wait=2)
    due_at = parse_time(json.loads(text)["_poll"]["dueAt"])
    assert due_at is not None
    assert due_at >= before
