"""The poll function under the request budget: a poll that would wait long goes back on the queue
(the ledger says when), and a 429 reschedules the job and pauses the whole app."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from shared import worker
from shared.messages import JobMessage
from shared.runtime import build_runtime, process_runtime
from shared.sweep import run_sweep
from shared.timefmt import format_time
from shared.worker import MAX_BUDGET_WAIT, Outcome, handle_message
from tests.conftest import EMULATOR_KEY

from .conftest import SetFaults, Stack
from .test_sweep_function import record_due

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("stack", [{"LANGUAGE_MAX_REQUESTS_PER_MINUTE": "1"}], indirect=True)
async def test_a_poll_that_would_wait_long_for_the_budget_goes_back_on_the_queue(stack: Stack) -> None:
    runtime = await process_runtime()
    ahead = asyncio.create_task(runtime.budget.acquire())  # one a minute: the next waits a minute
    await asyncio.sleep(0.5)
    job_id = await stack.submit()
    before = datetime.now(UTC)

    result = await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)
    ahead.cancel()

    assert result.outcome is Outcome.RESCHEDULED
    assert result.delay is not None
    assert result.delay > MAX_BUDGET_WAIT
    assert (await stack.requests_for(job_id)).get("GET", 0) == 0  # not polled: no request spent
    due = await record_due(stack, job_id)
    assert due is not None
    assert due >= before + timedelta(seconds=MAX_BUDGET_WAIT)
    assert await stack.queue_length(stack.settings.jobs_queue) == 1


async def test_a_429_reschedules_the_job_and_pauses_every_request_of_the_app(stack: Stack) -> None:
    runtime = await process_runtime()
    job_id = await stack.submit()
    await stack.admin("PUT", "rate-limit", {"requestsPerMinute": 1})
    try:
        # Whatever the window holds, this one fills it: the app's GET is refused for about a minute.
        async with stack.http.get(
            f"{stack.emulator_url}/language/analyze-text/jobs/{job_id}",
            params={"api-version": stack.settings.language_api_version},
            headers={"Ocp-Apim-Subscription-Key": EMULATOR_KEY},
        ):
            pass

        result = await handle_message(
            json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime
        )
    finally:
        await stack.admin("PUT", "rate-limit", {"requestsPerMinute": None})

    assert result.outcome is Outcome.RESCHEDULED
    assert result.delay is not None
    # Retry-After (about a minute) floors the next poll up to the cap (the tests' cap is short).
    assert result.delay == stack.settings.poll_max_delay_seconds
    state = runtime.budget.state  # type: ignore[attr-defined]
    assert state.throttled_until > time.time() + 5
    assert state.factor == 1.0  # the first 429 of a squeeze: Retry-After says all there is
    assert (await stack.requests_for(job_id))["GET"] == 2  # the direct one and the app's one only


async def test_a_429_asking_for_one_second_is_the_requests_own_and_pauses_nobody(
    stack: Stack, faults: SetFaults
) -> None:
    """The per-second limit (Retry-After: 1): the request retries in place; the app keeps its rate."""
    runtime = await process_runtime()
    job_id = await stack.submit()
    await faults(rate429=1.0, retryAfterSeconds=1)

    result = await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)

    assert result.outcome is Outcome.RESCHEDULED
    state = runtime.budget.state  # type: ignore[attr-defined]
    assert state is not None
    assert state.throttled_until < time.time()
    assert state.factor == 1.0


@pytest.mark.parametrize("stack", [{"LANGUAGE_MAX_REQUESTS_PER_MINUTE": "600"}], indirect=True)
async def test_under_a_squeeze_no_invocation_waits_past_the_bound_and_the_ledger_says_when(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many invocations wait while the service's limit drops under them: each returns within the
    wait bound (3 s here, 30 s in production) plus its own work, none fails, and every job that
    goes back on the queue is due in the ledger no earlier than its invocation ended."""
    bound, work = 3.0, 6.0
    monkeypatch.setattr(worker, "MAX_BUDGET_WAIT", bound)
    runtime = await process_runtime()
    job_ids = [await stack.submit() for _ in range(24)]
    await stack.admin("PUT", "rate-limit", {"requestsPerMinute": 6})
    loop = asyncio.get_running_loop()

    async def invoke(job_id: str) -> tuple[str, object, float, datetime]:
        started = loop.time()
        result = await handle_message(
            json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime
        )
        return job_id, result.outcome, loop.time() - started, datetime.now(UTC)

    try:
        runs = await asyncio.gather(*(invoke(job_id) for job_id in job_ids))
    finally:
        await stack.admin("PUT", "rate-limit", {"requestsPerMinute": None})

    assert max(seconds for _, _, seconds, _ in runs) <= bound + work
    rescheduled = [(job_id, ended) for job_id, outcome, _, ended in runs if outcome is Outcome.RESCHEDULED]
    assert len(rescheduled) >= len(job_ids) - 6  # the squeezed service admitted six at most
    for job_id, ended in rescheduled:
        due = await record_due(stack, job_id)
        assert due is not None
        assert due >= ended - timedelta(seconds=1)


@pytest.mark.parametrize("stack", [{"SWEEP_GRACE_SECONDS": "10"}], indirect=True)
async def test_the_sweep_does_not_redrive_a_job_whose_poll_only_waits_for_the_budget(stack: Stack) -> None:
    """A pending job's poll came 40 s late and now waits for a 12-s pause: another instance's sweep
    (grace 10 s) sees in the ledger that the poll is held, not lost."""
    runtime = await process_runtime()
    other = await build_runtime(stack.settings)
    try:
        job_id = await stack.submit()
        now = datetime.now(UTC)
        due = now - timedelta(seconds=40)
        message = JobMessage(job_id=job_id, attempt=3, first_seen_at=now - timedelta(minutes=2), due_at=due)
        etag = await runtime.ledger.create(message, next_poll_at=due)
        await runtime.budget.throttled(12.0)
        poll = asyncio.create_task(
            handle_message(
                message.evolve(ledger_etag=etag).to_json().encode(), dequeue_count=1, runtime=runtime
            )
        )
        await asyncio.sleep(2.0)

        report = await run_sweep(other)
        result = await poll
    finally:
        await other.aclose()

    assert report.redriven == 0
    assert result.outcome in (Outcome.RESCHEDULED, Outcome.ARCHIVED)
    assert await stack.queue_length(stack.settings.jobs_queue) <= 1  # its own next poll at most


async def test_a_due_time_before_the_messages_insertion_cannot_make_polls_look_late(stack: Stack) -> None:
    job_id = await stack.submit()
    now = datetime.now(UTC)
    forged = {"jobId": job_id, "_poll": {"attempt": 3, "dueAt": format_time(now - timedelta(hours=10))}}

    await stack.deliver(forged, enqueued_at=now)

    assert await (await process_runtime()).budget.lateness() < 60


async def test_a_poll_late_after_its_insertion_counts_from_its_due_time(stack: Stack) -> None:
    job_id = await stack.submit()
    now = datetime.now(UTC)
    due = now - timedelta(minutes=10)
    message = {"jobId": job_id, "_poll": {"attempt": 3, "dueAt": format_time(due)}}

    await stack.deliver(message, enqueued_at=due - timedelta(seconds=5))

    assert await (await process_runtime()).budget.lateness() >= 590
