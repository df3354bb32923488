"""What the poll function does when the Language service misbehaves or is misconfigured."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from local.emulator import EmulatorConfig, serve
from shared.messages import JobMessage
from shared.runtime import build_runtime, close_process_runtime
from shared.settings import load_settings
from shared.timefmt import parse_time
from shared.worker import MAX_UNUSABLE, handle_message
from tests.conftest import EMULATOR_KEY
from tests.support import serve_local

from .conftest import SetFaults, Stack

pytestmark = pytest.mark.integration


async def ledger_record(stack: Stack, job_id: str) -> dict[str, Any]:
    data = await stack.blob(f"{job_id}.json", container=stack.settings.ledger_container)
    assert data is not None, "the job is recorded in the ledger"
    record: dict[str, Any] = json.loads(data)
    return record


def seconds_until(record: dict[str, Any]) -> float:
    due = parse_time(record["nextPollAt"])
    assert due is not None
    return (due - datetime.now(UTC)).total_seconds()


async def test_server_errors_are_retried_in_place_then_rescheduled(stack: Stack, faults: SetFaults) -> None:
    job_id = await stack.submit()
    await faults(rate_5xx=1.0)

    await stack.deliver({"jobId": job_id})

    assert (await stack.requests_for(job_id)).get("GET") == 3  # the in-place attempts
    assert await stack.manifest(job_id) is None
    assert await stack.queue_length(stack.settings.jobs_queue) == 1


async def test_job_rescheduled_after_server_errors_is_archived_once_they_stop(
    stack: Stack, faults: SetFaults
) -> None:
    job_id = await stack.submit()
    await faults(rate_5xx=1.0)
    await stack.deliver({"jobId": job_id})
    await faults(rate_5xx=0.0)

    text, dequeue_count = await stack.next_job_message()
    await stack.deliver(text, dequeue_count=dequeue_count)

    assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"


async def test_long_retry_after_is_not_slept_on_but_floors_the_next_poll(
    stack: Stack, faults: SetFaults
) -> None:
    job_id = await stack.submit()
    await faults(rate_429=1.0, retry_after_seconds=3600)

    await stack.deliver({"jobId": job_id})

    assert (await stack.requests_for(job_id)).get("GET") == 1
    # POLL_MAX_DELAY_SECONDS (2 in these tests) caps a Retry-After of an hour.
    assert 0 < seconds_until(await ledger_record(stack, job_id)) <= 2.5


async def test_connection_resets_are_transient(stack: Stack, faults: SetFaults) -> None:
    job_id = await stack.submit()
    await faults(rate_reset=1.0)

    await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is None
    assert await stack.queue_length(stack.settings.jobs_queue) == 1


async def test_malformed_body_is_retried_and_then_rescheduled(stack: Stack, faults: SetFaults) -> None:
    job_id = await stack.submit()
    await faults(rate_malformed=1.0)

    await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is None
    text, _ = await stack.next_job_message()
    assert json.loads(text)["_poll"]["unusable"] == 1


async def test_pages_that_never_parse_end_the_job_rejected_after_the_usual_polls(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"malformedPages": True})
    # The app's own record of the polls before: all but the last one unusable.
    pending = JobMessage(job_id=job_id, attempt=MAX_UNUSABLE - 1, unusable=MAX_UNUSABLE - 1)

    await stack.deliver(await stack.rescheduled(pending))

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "rejected"
    assert manifest["errors"][0]["code"] == "UnusableResponse"


async def test_next_link_off_the_endpoint_is_never_followed(stack: Stack) -> None:
    hits: list[str] = []

    async def trap(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({})

    async with serve_local(trap) as trap_url:
        job_id = await stack.submit([{"id": str(n), "text": "Seattle"} for n in range(25)])
        await stack.admin("POST", f"jobs/{job_id}/overrides", {"nextLinkBase": trap_url})

        await stack.deliver({"jobId": job_id})

    assert hits == []
    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "rejected"
    assert manifest["tasks"] == []


async def test_wrong_key_keeps_the_job_and_logs_which_setting_to_check(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await stack.submit()
    monkeypatch.setenv("LANGUAGE_API_KEY", "not-the-key")
    await close_process_runtime()

    with caplog.at_level(logging.ERROR, logger="archiver"):
        await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is None
    assert any("LANGUAGE_API_KEY" in record.getMessage() for record in caplog.records)
    # A configuration fault waits the capped delay (POLL_MAX_DELAY_SECONDS = 2 here).
    assert 1 < seconds_until(await ledger_record(stack, job_id)) <= 2.5


async def test_unreachable_endpoint_keeps_the_job(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = str(uuid.uuid4())
    monkeypatch.setenv("LANGUAGE_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    await close_process_runtime()

    await stack.deliver({"jobId": job_id})

    assert await stack.queue_length(stack.settings.jobs_queue) == 1
    assert (await ledger_record(stack, job_id))["jobId"] == job_id


async def test_job_unfinished_at_its_expiry_margin_is_cancelled_and_ends_timed_out(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jobs of this emulator expire 601 s after submission: 1 s before the 600 s expiry margin.
    config = EmulatorConfig(
        api_key=EMULATOR_KEY, not_started_seconds=0, running_seconds=3600, expiry_seconds=601
    )
    async with serve(config) as short_lived:
        monkeypatch.setenv("LANGUAGE_ENDPOINT", short_lived.base_url)
        await close_process_runtime()
        local = dataclasses.replace(
            stack,
            emulator_url=short_lived.base_url,
            settings=load_settings({**stack.environ, "LANGUAGE_ENDPOINT": short_lived.base_url}),
        )
        job_id = await local.submit([{"id": "1", "text": "Seattle"}])

        await local.deliver({"jobId": job_id})
        text, dequeue_count = await local.next_job_message(wait=5)
        await local.deliver(text, dequeue_count=dequeue_count)

        cancels = (await local.requests_for(job_id)).get("CANCEL", 0)

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "timedOut"
    assert manifest["errors"][0]["code"] == "TimedOut"
    assert cancels >= 1
    assert await stack.ledger_names() == []


@pytest.mark.usefixtures("slow_jobs")
async def test_job_seen_past_its_expiration_ends_expired_without_a_cancel(stack: Stack) -> None:
    job_id = await stack.submit()
    jobs = {job["jobId"]: job for job in (await stack.admin("GET", "jobs"))["jobs"]}
    expiration = parse_time(jobs[job_id]["expirationDateTime"])
    assert expiration is not None
    # The app's clock an hour past the job's expiry, while the service still answers for it.
    later = expiration + timedelta(hours=1)
    runtime = await build_runtime(stack.settings, clock=lambda: later)
    try:
        result = await handle_message(
            json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime
        )
    finally:
        await runtime.aclose()

    assert result.status == "expired"
    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["errors"][0]["code"] == "Expired"
    assert (await stack.requests_for(job_id)).get("CANCEL", 0) == 0
