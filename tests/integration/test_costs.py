"""Every storage or Language request is billed: count the round trips of each path exactly.

The app's one aiohttp session carries every request (Language and storage alike), so a trace
config on it sees them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp
import pytest

from local.bench.floor import Floor
from local.host.azurite import Azurite
from shared.budget import BudgetLimits
from shared.request_budget import HOST_CONTAINER
from shared.runtime import Runtime, build_runtime
from shared.settings import Settings
from shared.worker import Outcome, handle_message
from tests.conftest import EMULATOR_KEY

from .conftest import Stack, documents

pytestmark = pytest.mark.integration


class Meter:
    """Counts requests as (service, method) where service is language, blob or queue."""

    def __init__(self, stack: Stack) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self._ports = {
            urlsplit(stack.emulator_url).port: "language",
            urlsplit(stack.blobs.url).port: "blob",
            urlsplit(stack.queues.url).port: "queue",
        }
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._on_request)

    async def _on_request(
        self,
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        service = self._ports.get(params.url.port, "other")
        if f"/{HOST_CONTAINER}/" in params.url.path:
            # The request budget's batches serve many jobs' requests: pinned by the tests below.
            service = "budget"
        self.calls[(service, params.method)] += 1

    def of(self, service: str) -> int:
        return sum(count for (name, _), count in self.calls.items() if name == service)

    def per_job(self) -> Counter[tuple[str, str]]:
        """The calls without the request budget's."""
        return Counter({key: count for key, count in self.calls.items() if key[0] != "budget"})

    def reset(self) -> None:
        self.calls.clear()


@contextlib.asynccontextmanager
async def metering(stack: Stack, settings: Settings) -> AsyncIterator[tuple[Runtime, Meter]]:
    meter = Meter(stack)
    runtime = await build_runtime(settings, trace_configs=[meter.trace])
    # Steady state: the containers exist (their one-time creation is not a per-job cost).
    for name in (settings.archive_container, settings.ledger_container):
        await stack.blobs.get_container_client(name).create_container()
    await stack.queues.get_queue_client(settings.jobs_queue).create_queue()
    # And the request budget's blob (its batches are counted apart, as "budget").
    await runtime.budget.acquire()
    meter.reset()
    yield runtime, meter
    await runtime.aclose()


@pytest.fixture
async def metered(stack: Stack) -> AsyncIterator[tuple[Runtime, Meter]]:
    async with metering(stack, stack.settings) as metered:
        yield metered


@pytest.fixture
async def metered_events(stack: Stack) -> AsyncIterator[tuple[Runtime, Meter]]:
    """As ``metered``, with EVENTS_QUEUE set to a queue that does not exist yet."""
    settings = dataclasses.replace(stack.settings, events_queue=f"events-{uuid.uuid4().hex[:12]}")
    async with metering(stack, settings) as metered:
        yield metered


async def test_job_finished_at_first_poll_costs_one_get_and_one_put_per_blob(
    stack: Stack, metered: tuple[Runtime, Meter]
) -> None:
    runtime, meter = metered
    job_id = await stack.submit(documents(3))

    result = await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)

    assert result.outcome is Outcome.ARCHIVED
    assert meter.per_job() == Counter({("language", "GET"): 1, ("blob", "PUT"): 3})  # 2 task blobs + manifest


async def test_each_further_page_costs_one_get(stack: Stack, metered: tuple[Runtime, Meter]) -> None:
    runtime, meter = metered
    job_id = await stack.submit(documents(25))

    await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)

    assert meter.per_job() == Counter({("language", "GET"): 2, ("blob", "PUT"): 3})


async def test_poll_of_an_unfinished_job_costs_a_get_a_ledger_put_and_a_queue_put(
    stack: Stack, metered: tuple[Runtime, Meter]
) -> None:
    runtime, meter = metered
    await stack.admin("PUT", "timing", {"notStartedSeconds": 3600})
    try:
        job_id = await stack.submit()
    finally:
        await stack.admin("PUT", "timing", {"notStartedSeconds": 0})

    result = await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)

    assert result.outcome is Outcome.RESCHEDULED
    assert meter.per_job() == Counter({("language", "GET"): 1, ("blob", "PUT"): 1, ("queue", "POST"): 1})


async def test_redelivered_message_of_an_archived_job_costs_one_probe(
    stack: Stack, metered: tuple[Runtime, Meter]
) -> None:
    runtime, meter = metered
    job_id = await stack.submit()
    body = json.dumps({"jobId": job_id}).encode()
    await handle_message(body, dequeue_count=1, runtime=runtime)
    meter.reset()

    result = await handle_message(body, dequeue_count=2, runtime=runtime)

    assert result.outcome is Outcome.ALREADY_ARCHIVED
    assert meter.per_job() == Counter({("blob", "HEAD"): 1, ("blob", "DELETE"): 1})


async def test_duplicate_first_delivery_of_an_archived_job_stops_at_its_task_blobs(
    stack: Stack, metered: tuple[Runtime, Meter]
) -> None:
    runtime, meter = metered
    job_id = await stack.submit()
    body = json.dumps({"jobId": job_id}).encode()
    await handle_message(body, dequeue_count=1, runtime=runtime)
    meter.reset()

    result = await handle_message(body, dequeue_count=1, runtime=runtime)

    assert result.outcome is Outcome.ALREADY_ARCHIVED
    # The task blobs are written at once, so each meets its 409; the probe then finds the manifest.
    assert meter.per_job() == Counter({("language", "GET"): 1, ("blob", "PUT"): 2, ("blob", "HEAD"): 1})


async def test_poisoned_message_costs_one_queue_put_and_no_service_call(
    stack: Stack, metered: tuple[Runtime, Meter]
) -> None:
    runtime, meter = metered
    await stack.queues.get_queue_client(stack.settings.poison_queue).create_queue()

    result = await handle_message(b"not-a-job", dequeue_count=1, runtime=runtime)

    assert result.outcome is Outcome.POISONED
    assert meter.per_job() == Counter({("queue", "POST"): 1})


async def test_the_request_budget_costs_a_storage_transaction_per_ten_language_requests_at_full_rate(
    metered: tuple[Runtime, Meter],
) -> None:
    runtime, meter = metered
    requests = 120  # 12 s at the default 600 a minute: the bucket's burst is long spent
    assert runtime.settings.language_max_requests_per_minute == 600

    await asyncio.gather(*(runtime.budget.acquire() for _ in range(requests)))

    assert 0 < meter.of("budget") <= requests / 10
    assert meter.of("blob") == 0


async def test_a_lone_job_on_an_instance_holding_no_tokens_costs_one_more_put_for_its_batch(
    stack: Stack, metered: tuple[Runtime, Meter]
) -> None:
    runtime, meter = metered
    job_id = await stack.submit(documents(25))  # two pages: both from the one batch
    await asyncio.sleep(BudgetLimits(per_minute=600).hold_seconds + 0.2)  # the held tokens expire

    await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)

    assert meter.calls == Counter({("language", "GET"): 2, ("blob", "PUT"): 3, ("budget", "PUT"): 1})


async def test_an_idle_instance_sends_nothing_for_the_request_budget(metered: tuple[Runtime, Meter]) -> None:
    _, meter = metered

    await asyncio.sleep(1.0)

    assert meter.calls == Counter()


async def test_benchmark_floor_sends_the_apps_requests_for_the_same_job(
    stack: Stack, metered: tuple[Runtime, Meter], azurite: Azurite
) -> None:
    """``make bench`` compares the app with this floor: a cheaper floor would make the ratio lie."""
    runtime, meter = metered
    job_id = await stack.submit(documents(25))  # two pages
    await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)
    app_calls, app_blobs = meter.per_job(), await stack.blob_names()
    meter.reset()
    container = f"floor-{uuid.uuid4().hex[:12]}"
    await stack.blobs.create_container(container)

    async with aiohttp.ClientSession(trace_configs=[meter.trace]) as http:
        floor = Floor(
            http=http,
            language_url=stack.emulator_url,
            key=EMULATOR_KEY,
            blob_url=azurite.blob_endpoint,
            container=container,
        )
        await floor.archive(job_id)

    assert meter.calls == app_calls == Counter({("language", "GET"): 2, ("blob", "PUT"): 3})
    assert await stack.blob_names(container=container) == app_blobs


# -- with EVENTS_QUEUE set: one more queue message per archived job -----------------------------------


async def test_with_events_each_job_costs_one_queue_post_and_the_queue_is_created_once(
    stack: Stack, metered_events: tuple[Runtime, Meter]
) -> None:
    runtime, meter = metered_events
    first, second = await stack.submit(), await stack.submit()

    await handle_message(json.dumps({"jobId": first}).encode(), dequeue_count=1, runtime=runtime)
    first_calls = meter.per_job()
    meter.reset()
    await handle_message(json.dumps({"jobId": second}).encode(), dequeue_count=1, runtime=runtime)

    # The first send meets a 404, creates the queue and sends again; after that, one POST a job.
    assert first_calls == Counter(
        {("language", "GET"): 1, ("blob", "PUT"): 3, ("queue", "POST"): 2, ("queue", "PUT"): 1}
    )
    assert meter.per_job() == Counter({("language", "GET"): 1, ("blob", "PUT"): 3, ("queue", "POST"): 1})


@pytest.mark.parametrize(
    ("dequeue_count", "expected"),
    [
        # A redelivered message reads the manifest (GET) where it would probe it (HEAD).
        (2, {("blob", "GET"): 1, ("queue", "POST"): 1, ("blob", "DELETE"): 1}),
        # A duplicate first delivery meets the 409s and the probe, then reads the winner's manifest.
        (
            1,
            {("language", "GET"): 1, ("blob", "PUT"): 2, ("blob", "HEAD"): 1, ("blob", "GET"): 1,
             ("queue", "POST"): 1},
        ),
    ],
    ids=["redelivered", "duplicate"],
)  # fmt: skip
async def test_with_events_an_archived_job_found_again_costs_a_manifest_read_and_the_event(
    stack: Stack,
    metered_events: tuple[Runtime, Meter],
    dequeue_count: int,
    expected: dict[tuple[str, str], int],
) -> None:
    runtime, meter = metered_events
    job_id = await stack.submit()
    body = json.dumps({"jobId": job_id}).encode()
    await handle_message(body, dequeue_count=1, runtime=runtime)
    meter.reset()

    result = await handle_message(body, dequeue_count=dequeue_count, runtime=runtime)

    assert result.outcome is Outcome.ALREADY_ARCHIVED
    assert meter.per_job() == Counter(expected)
