"""404s (DESIGN.md, "Bad input"): a job the app has seen is not given up on one 404 before its
expirationDateTime, and a 404 for the route itself (a wrong api-version) keeps every job."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.upstream import submit_job
from shared.messages import parse_message
from shared.timefmt import format_time, parse_time
from tests.conftest import EMULATOR_KEY

from .conftest import Stack, documents

pytestmark = pytest.mark.integration


def ago(**delta: float) -> str:
    return format_time(datetime.now(UTC) - timedelta(**delta)) or ""


def ahead(**delta: float) -> str:
    return format_time(datetime.now(UTC) + timedelta(**delta)) or ""


def seen(*, hours_ago: float, expires_in_hours: float, **more: Any) -> dict[str, Any]:
    """The app's own ``_poll`` fields of a job it has seen ``hours_ago`` (as a message claims them)."""
    first = ago(hours=hours_ago)
    expires = ahead(hours=expires_in_hours)
    return {"attempt": 3, "firstSeenAt": first, "seenAt": first, "expiresAt": expires, **more}


async def recorded(stack: Stack, job_id: str, poll: dict[str, Any]) -> str:
    """The message the app itself wrote for ``job_id`` with the ``_poll`` state ``poll``, its ledger
    record written too (a 404 believes the message's own times only so far as the record backs them)."""
    claimed = parse_message(json.dumps({"jobId": job_id, "_poll": poll}), settings=stack.settings)
    return await stack.rescheduled(claimed)


async def seen_then_purged(stack: Stack) -> str:
    """A job the app has polled once (unfinished), then purged by the service."""
    job_id = await stack.submit()
    await stack.deliver({"jobId": job_id})
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"purge": True})
    return job_id


async def ledger_message(stack: Stack, job_id: str) -> dict[str, Any]:
    data = await stack.blob(f"{job_id}.json", container=stack.settings.ledger_container)
    assert data is not None, "the job is recorded in the ledger"
    message: dict[str, Any] = json.loads(data)["message"]
    return message


@pytest.mark.usefixtures("slow_jobs")
async def test_first_404_of_a_seen_job_before_its_expiry_keeps_it_and_records_when(stack: Stack) -> None:
    job_id = await seen_then_purged(stack)
    text, dequeue_count = await stack.next_job_message()

    await stack.deliver(text, dequeue_count=dequeue_count)

    assert await stack.manifest(job_id) is None
    rescheduled, _ = await stack.next_job_message()
    since = parse_time(json.loads(rescheduled)["_poll"]["notFoundSince"])
    assert since is not None
    assert abs((datetime.now(UTC) - since).total_seconds()) < 30
    assert (await ledger_message(stack, job_id))["_poll"]["notFoundSince"] == format_time(since)


async def test_404s_spanning_the_confirmation_window_end_the_job_expired(stack: Stack) -> None:
    job_id = str(uuid.uuid4())  # unknown to the emulator: every GET answers its 404
    poll = seen(hours_ago=1, expires_in_hours=23, notFoundSince=ago(minutes=5, seconds=1))

    await stack.deliver(await recorded(stack, job_id, poll))

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "expired"
    assert "answered 404 from" in manifest["errors"][0]["message"]


async def test_404s_shorter_than_the_confirmation_window_keep_the_job(stack: Stack) -> None:
    job_id = str(uuid.uuid4())
    poll = seen(hours_ago=1, expires_in_hours=23, notFoundSince=ago(minutes=4))

    await stack.deliver(await recorded(stack, job_id, poll))

    assert await stack.manifest(job_id) is None
    text, _ = await stack.next_job_message()
    assert parse_time(json.loads(text)["_poll"]["notFoundSince"]) == parse_time(poll["notFoundSince"])


async def test_a_forged_not_found_since_without_its_ledger_record_cannot_end_the_job(stack: Stack) -> None:
    job_id = str(uuid.uuid4())
    poll = seen(hours_ago=1, expires_in_hours=23, notFoundSince=ago(minutes=30))

    await stack.deliver({"jobId": job_id, "_poll": poll})

    assert await stack.manifest(job_id) is None
    text, _ = await stack.next_job_message()
    assert json.loads(text)["_poll"]["notFoundSince"] is None


async def test_a_not_found_since_earlier_than_its_ledger_record_counts_from_the_record(stack: Stack) -> None:
    job_id = str(uuid.uuid4())
    text = await recorded(stack, job_id, seen(hours_ago=1, expires_in_hours=23, notFoundSince=ago(minutes=1)))
    forged = json.loads(text)
    forged["_poll"]["notFoundSince"] = ago(minutes=30)

    await stack.deliver(forged)

    assert await stack.manifest(job_id) is None
    since = parse_time(json.loads((await stack.next_job_message())[0])["_poll"]["notFoundSince"])
    assert since is not None
    assert datetime.now(UTC) - since < timedelta(minutes=2)


async def test_404_after_the_jobs_expiration_ends_it_expired_at_once(stack: Stack) -> None:
    job_id = str(uuid.uuid4())
    poll = seen(hours_ago=25, expires_in_hours=-1)

    await stack.deliver(await recorded(stack, job_id, poll))

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "expired"
    assert "after its expirationDateTime" in manifest["errors"][0]["message"]


@pytest.mark.usefixtures("slow_jobs")
async def test_an_answer_after_a_404_starts_the_confirmation_afresh(stack: Stack) -> None:
    job_id = await stack.submit()
    poll = seen(hours_ago=0.2, expires_in_hours=20, notFoundSince=ago(minutes=4))

    await stack.deliver({"jobId": job_id, "_poll": poll})

    text, _ = await stack.next_job_message()
    assert json.loads(text)["_poll"]["notFoundSince"] is None


# -- a 404 for the route itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    "stack", [{"LANGUAGE_API_VERSION": "2099-01-01"}], indirect=True, ids=["unknown-api-version"]
)
async def test_gateway_404_for_an_unknown_api_version_keeps_every_job(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    await stack.admin("PUT", "gateway", {"unknownApiVersionStatus": 404})
    try:
        jobs = [await stack_submit_supported(stack) for _ in range(3)]
        with caplog.at_level(logging.ERROR, logger="archiver"):
            await stack.deliver({"jobId": jobs[0]})
            await stack.deliver({"jobId": jobs[1], "_poll": {"attempt": 3, "firstSeenAt": ago(hours=2)}})
            poll = seen(hours_ago=2, expires_in_hours=22, notFoundSince=ago(minutes=30))
            await stack.deliver({"jobId": jobs[2], "_poll": poll})
    finally:
        await stack.admin("PUT", "gateway", {"unknownApiVersionStatus": 400})

    assert [await stack.manifest(job_id) for job_id in jobs] == [None, None, None]
    assert await stack.queue_length(stack.settings.jobs_queue) == 3
    assert sorted(await stack.ledger_names()) == sorted(f"{job_id}.json" for job_id in jobs)
    assert any("LANGUAGE_API_VERSION" in record.getMessage() for record in caplog.records)


async def stack_submit_supported(stack: Stack) -> str:
    """A job submitted with a version the emulator serves (the app's own version is the wrong one)."""
    job = await submit_job(
        stack.http,
        stack.emulator_url,
        key=EMULATOR_KEY,
        documents=documents(1),
        tasks=[{"kind": "EntityRecognition", "taskName": "t", "parameters": {"modelVersion": "latest"}}],
        display_name=None,
        api_version="2024-11-01",
    )
    return job.job_id
