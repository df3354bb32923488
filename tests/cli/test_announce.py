"""``announce``: the archive events of archived jobs sent again on EVENTS_QUEUE, for a consumer that
was down longer than the queue kept them."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.integration.conftest import Stack
from tests.integration.test_archive_events import event_lifetimes

from .conftest import ARCHIVED_AT, RunCli, archive_job, cner_item, ner_item, put_blob

pytestmark = pytest.mark.integration


def with_events() -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "stack", [{"EVENTS_QUEUE": f"events-{uuid.uuid4().hex[:12]}"}], indirect=True
    )


async def events(stack: Stack) -> list[dict[str, Any]]:
    assert stack.settings.events_queue is not None
    queue = stack.queues.get_queue_client(stack.settings.events_queue)
    try:
        peeked = await queue.peek_messages(max_messages=32)
    except ResourceNotFoundError:  # created by the first send only
        return []
    return [json.loads(base64.b64decode(m.content)) for m in peeked]


@with_events()
async def test_named_jobs_are_announced_and_a_job_without_manifest_is_reported(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(
        stack, [ner_item("Seattle", "Zürich"), cner_item("東京")], correlation_id="c-1"
    )
    missing = str(uuid.uuid4())

    ran = await run_cli("announce", "--json", job_id, missing)

    assert ran.status == 1  # a job that is not archived is a problem
    assert ran.objects() == [
        {"jobId": job_id, "action": "announced"},
        {"jobId": missing, "action": "not-archived"},
    ]
    [event] = await events(stack)
    assert event["id"] == job_id
    assert event["time"] == "2026-11-30T12:00:00Z"
    assert event["data"]["correlationId"] == "c-1"
    assert (event["data"]["taskCount"], event["data"]["entityCount"]) == (2, 3)


@with_events()
async def test_the_whole_archive_is_announced_filtered_by_status_and_since(
    stack: Stack, run_cli: RunCli
) -> None:
    old = await archive_job(stack, archived_at=datetime(2026, 1, 1, tzinfo=UTC))
    failed = await archive_job(stack, status="failed")
    recent = await archive_job(stack)

    ran = await run_cli("announce", "--json", "--status", "succeeded", "--since", "2026-11-01")

    assert ran.status == 0
    assert ran.objects() == [{"jobId": recent, "action": "announced"}]
    assert [event["id"] for event in await events(stack)] == [recent]
    assert old not in ran.out
    assert failed not in ran.out


@with_events()
async def test_text_output_names_each_job_and_sums_up(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack, archived_at=ARCHIVED_AT)

    ran = await run_cli("announce", job_id)

    assert ran.status == 0
    assert ran.out.splitlines()[0] == f"{job_id}  announced"
    assert f"{stack.settings.events_queue}: 1 announced" in ran.out + ran.err


@with_events()
async def test_an_unreadable_manifest_is_reported_and_not_announced(stack: Stack, run_cli: RunCli) -> None:
    job_id = str(uuid.uuid4())
    await stack.blobs.create_container(stack.settings.archive_container)
    await put_blob(stack, f"{job_id}/manifest.json", b"{not json")

    ran = await run_cli("announce", "--json", job_id)

    assert ran.status == 1
    assert ran.objects() == [{"jobId": job_id, "action": "manifest-unreadable"}]
    assert "verify" in ran.err
    assert await events(stack) == []


async def test_without_events_queue_it_is_a_settings_error_in_one_line(stack: Stack, run_cli: RunCli) -> None:
    ran = await run_cli("announce")

    assert ran.status == 2
    assert ran.out == ""
    assert ran.err.startswith("error: EVENTS_QUEUE is not set")
    assert len(ran.err.strip().splitlines()) == 1


async def test_help_names_the_filters(stack: Stack, run_cli: RunCli) -> None:
    ran = await run_cli("announce", "--help")

    assert ran.status == 0
    for option in ("--since", "--status", "--json", "JOB_ID"):
        assert option in ran.out


@pytest.mark.parametrize(
    "stack",
    [{"EVENTS_QUEUE": f"events-{uuid.uuid4().hex[:12]}", "EVENTS_TIME_TO_LIVE_SECONDS": "86400"}],
    indirect=True,
)
async def test_announced_events_carry_events_time_to_live_seconds(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack, [ner_item("Seattle")])

    ran = await run_cli("announce", job_id)

    assert ran.status == 0
    assert await event_lifetimes(stack) == [86400]
